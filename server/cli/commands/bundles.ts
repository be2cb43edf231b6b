import { createReadStream, createWriteStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import type { Command } from 'commander'
import { withApp, type GlobalOptions } from '../app.js'
import { FileNotFoundError } from '../../errors.js'
import { printJson } from '../output.js'

/** tenants:export and tenants:import: one tenant as a portable bundle. */
export function registerBundleCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:export')
    .description('write one tenant (central rows, domains, data in COPY format, schema version) as a bundle, from one consistent snapshot, to stdout or --out')
    .argument('<tenant>', 'identifier or key')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (name: string, flags: { out?: string }) => {
      await withApp(global(), async (app) => {
        const out = flags.out === undefined ? process.stdout : createWriteStream(flags.out)
        const manifest = await app.tenancy.bundles.export(name, out)
        if (out !== process.stdout) {
          out.end()
          await finished(out)
        }
        process.stderr.write(`Exported tenant ${manifest.tenant.identifier} (${manifest.tenant.key}) at migration ${manifest.migrations.at(-1) ?? 'none'}.\n`)
      })
    })

  program.command('tenants:import')
    .description('make a tenant of a bundle, in this app\'s strategy, under its own identifier or a new one (--as); a bundle from a newer schema is refused')
    .argument('<file>', 'the bundle, or - for stdin')
    .option('--as <identifier>', 'import under this identifier, with a new key and without the original\'s domains')
    .option('--host <host>', 'database host, a name from database.hosts (default: database.defaultHost)')
    .option('--json', 'print the new tenant as JSON')
    .action(async (file: string, flags: { as?: string, host?: string, json?: boolean }) => {
      if (file !== '-') await access(file).catch(() => { throw new FileNotFoundError('bundle', file) })
      await withApp(global(), async (app) => {
        const input = file === '-' ? process.stdin : createReadStream(file)
        const tenant = await app.tenancy.bundles.import(input, { as: flags.as, host: flags.host })
        if (flags.json === true) printJson(tenant)
        else process.stdout.write(`Imported tenant ${tenant.identifier} (${tenant.key}), ${tenant.status}.\n`)
      })
    })
}
