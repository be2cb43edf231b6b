import { Command, CommanderError } from 'commander'
import type { GlobalOptions } from './app.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EXIT, describeError, failureLine } from './errors.js'
import { packageRoot } from '../package-root.js'
import { registerTenantCommands } from './commands/tenants.js'
import { registerChangeCommands } from './commands/changes.js'
import { registerFanOutCommands } from './commands/fan-out.js'
import { registerCentralCommands } from './commands/central.js'
import { registerAdminCommands } from './commands/admin.js'
import { registerRlsCommands } from './commands/rls.js'
import { registerMoveCommands } from './commands/moves.js'
import { registerBundleCommands } from './commands/bundles.js'
import { registerMigrationCommands } from './commands/migrations.js'

/** The `fastify-tenancy` program: global options and every command group. */
function buildProgram (): Command {
  const program = new Command('fastify-tenancy')
    .description('Manage the tenants of a fastify-tenancy app.')
    .option('-c, --config <file>', 'module whose default export is the tenancy plugin options (default: tenancy.config.ts, .mjs or .js in the working folder; else DATABASE_URL)')
    .option('--verbose', 'print the stack trace of an error')
    .version(version(), '-V, --version', 'print the version of fastify-tenancy')
    .addHelpText('after', '\nExit codes: 0 every tenant succeeded; 1 something failed (failed tenants are listed); 2 wrong usage or configuration; 3 the database cannot be reached or refused the login.')
    // Usage mistakes throw (here and in every command, which inherit it) so main() decides the exit
    // code and prints them as every other failure: the code and a sentence (or JSON with --json).
    .exitOverride()
    .configureOutput({ outputError: () => {} })
  const global = (): GlobalOptions => program.opts<GlobalOptions>()
  registerTenantCommands(program, global)
  registerChangeCommands(program, global)
  registerFanOutCommands(program, global)
  registerMigrationCommands(program, global)
  registerCentralCommands(program, global)
  registerAdminCommands(program, global)
  registerRlsCommands(program, global)
  registerMoveCommands(program, global)
  registerBundleCommands(program, global)
  return program
}

/** fastify-tenancy's version, from its package.json. */
function version (): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}

/** Waits until what was written to a stream has been handed to the system (pipes are asynchronous on some platforms). */
/** A failure as --json prints it: one JSON object on stdout, where the command's JSON would have been. */
function printJsonFailure (code: string, message: string): void {
  process.stdout.write(JSON.stringify({ code, message }) + '\n')
}

async function flushed (stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>((resolve) => { stream.write('', () => { resolve() }) })
}

/**
 * Parses, runs the command and exits: 0 when it all worked, 1 when something
 * failed, 2 for wrong usage or configuration, 3 when the database cannot be
 * reached or refuses the login. An error is its FST_TENANCY_* code and a
 * sentence on stderr (`--verbose` adds its stack), or with `--json` one
 * JSON object `{ code, message }` on stdout.
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
    if (error instanceof CommanderError && (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version')) {
      // The help or the version, as asked.
      process.exitCode = EXIT.ok
    } else {
      const failure = describeError(error)
      if (argv.includes('--json')) printJsonFailure(failure.code, failure.message)
      else process.stderr.write(failureLine(failure) + '\n')
      if (!(error instanceof CommanderError) && (program.opts<GlobalOptions>().verbose === true || argv.includes('--verbose'))) process.stderr.write(String((error as Error)?.stack ?? error) + '\n')
      process.exitCode = failure.exitCode
    }
  }
  await flushed(process.stdout)
  await flushed(process.stderr)
  // Leave even when a user's module (tenants:run) or a driver kept something open.
  process.exit(Number(process.exitCode ?? 0))
}

await main()
