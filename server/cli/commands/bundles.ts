import { createReadStream, createWriteStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import type { Command } from 'commander'
import { withApp, type GlobalOptions } from '../app.js'
import { FileNotFoundError } from '../../errors.js'
import { printJson, printTable } from '../output.js'

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
        const { tenant, resources } = await app.tenancy.bundles.restore(input, { as: flags.as, host: flags.host })
        // Mappings that could not be made are said, never dropped in silence.
        for (const u of resources.unmapped) {
          process.stderr.write(`Not mapped: ${u.resource} ${u.globalId} (${u.reason === 'missing' ? 'no central row has it here' : 'this app declares no such synced resource'}).\n`)
        }
        if (flags.json === true) printJson({ ...tenant, resources })
        else process.stdout.write(`Imported tenant ${tenant.identifier} (${tenant.key}), ${tenant.status}; ${resources.attached} synced resource${resources.attached === 1 ? '' : 's'} mapped.\n`)
      })
    })

  program.command('tenants:compare')
    .description('print each tenant table\'s row count and checksum for two tenants side by side (a restored copy against the tenant); exit 1 when they differ')
    .argument('<a>', 'identifier or key')
    .argument('<b>', 'identifier or key')
    .option('--json', 'print the comparison as JSON')
    .action(async (a: string, b: string, flags: { json?: boolean }) => {
      await withApp(global(), async (app) => {
        const tables = await app.tenancy.bundles.compare(a, b)
        if (flags.json === true) printJson(tables)
        else {
          printTable(tables.map((t) => ({
            table: t.table,
            [`${a} rows`]: t.a === null ? '-' : String(t.a.rows),
            [`${b} rows`]: t.b === null ? '-' : String(t.b.rows),
            [`${a} checksum`]: t.a?.checksum ?? '-',
            [`${b} checksum`]: t.b?.checksum ?? '-',
            same: t.equal ? 'yes' : 'NO'
          })), ['table', `${a} rows`, `${b} rows`, `${a} checksum`, `${b} checksum`, 'same'])
        }
        if (tables.some((t) => !t.equal)) process.exitCode = 1
      })
    })

  program.command('tenants:swap')
    .description('swap a restored copy in: the copy takes the tenant\'s identifier and domains, the tenant\'s former data is kept (held, serving no one) under the copy\'s identifier until it is deleted')
    .argument('<tenant>', 'identifier or key of the tenant')
    .argument('<copy>', 'identifier or key of the copy (imported with --as)')
    .option('--json', 'print { serving, kept } as JSON')
    .action(async (tenant: string, copy: string, flags: { json?: boolean }) => {
      await withApp(global(), async (app) => {
        const result = await app.tenancy.swap(tenant, copy)
        if (flags.json === true) printJson(result)
        else process.stdout.write(`Swapped: ${result.serving.identifier} is now ${result.serving.key} (the copy's data); the former data is kept as ${result.kept.identifier} (${result.kept.key}), held until you delete it (tenants:delete ${result.kept.identifier}).\n`)
      })
    })
}
