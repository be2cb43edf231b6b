import { Command, CommanderError } from 'commander'
import type { GlobalOptions } from './app.js'
import { EXIT, describeError } from './errors.js'
import { registerTenantCommands } from './commands/tenants.js'
import { registerChangeCommands } from './commands/changes.js'
import { registerFanOutCommands } from './commands/fan-out.js'
import { registerCentralCommands } from './commands/central.js'
import { registerAdminCommands } from './commands/admin.js'
import { registerRlsCommands } from './commands/rls.js'
import { registerMigrationCommands } from './commands/migrations.js'

/** The `fastify-tenancy` program: global options and every command group. */
function buildProgram (): Command {
  const program = new Command('fastify-tenancy')
    .description('Manage the tenants of a fastify-tenancy app.')
    .option('-c, --config <file>', 'module whose default export is the tenancy plugin options (default: tenancy.config.ts, .mjs or .js in the working folder; else DATABASE_URL)')
    .option('--verbose', 'print the stack trace of an error')
    .addHelpText('after', '\nExit codes: 0 every tenant succeeded; 1 something failed (failed tenants are listed); 2 wrong usage or configuration.')
    .showHelpAfterError('(run with --help for usage)')
    // Usage mistakes throw (here and in every command, which inherit it) so main() decides the exit code.
    .exitOverride()
  const global = (): GlobalOptions => program.opts<GlobalOptions>()
  registerTenantCommands(program, global)
  registerChangeCommands(program, global)
  registerFanOutCommands(program, global)
  registerMigrationCommands(program, global)
  registerCentralCommands(program, global)
  registerAdminCommands(program, global)
  registerRlsCommands(program, global)
  return program
}

/** Waits until what was written to a stream has been handed to the system (pipes are asynchronous on some platforms). */
async function flushed (stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>((resolve) => { stream.write('', () => { resolve() }) })
}

/**
 * Parses, runs the command and exits: 0 when it all worked, 1 when something
 * failed, 2 for wrong usage or configuration. An error is one sentence on
 * stderr; `--verbose` adds its stack.
 */
async function main (argv: readonly string[] = process.argv): Promise<never> {
  // Output piped into a reader that stopped early (| head): leave quietly, not with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(Number(process.exitCode ?? 0))
      throw error
    })
  }
  const program = buildProgram()
  try {
    await program.parseAsync([...argv])
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed what was wrong (or the help or version asked for).
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage
    } else {
      const { message, exitCode } = describeError(error)
      process.stderr.write(message + '\n')
      if (program.opts<GlobalOptions>().verbose === true || argv.includes('--verbose')) process.stderr.write(String((error as Error)?.stack ?? error) + '\n')
      process.exitCode = exitCode
    }
  }
  await flushed(process.stdout)
  await flushed(process.stderr)
  // Leave even when a user's module (tenants:run) or a driver kept something open.
  process.exit(Number(process.exitCode ?? 0))
}

await main()
