import type { Command } from 'commander'
import type { ResolvedOptions } from '../../options/index.js'
import type { MigrationDiffOptions } from '../../database/migration-diff.js'
import { withApp, type GlobalOptions } from '../app.js'
import { resolvedOptions } from '../config.js'
import { collectList, concurrency, names } from '../arguments.js'
import { EXIT } from '../errors.js'
import { CliConfigError, TenantMigrationsOutdatedError } from '../../errors.js'
import { printJson, printTable } from '../output.js'
import { mapLimit } from '../../lifecycle/each-tenant.js'
import { DEFAULT_CONCURRENCY } from './fan-out.js'

/**
 * What migration:create and migration:check compare: the app's tenant
 * entities against the schema its tenant migrations make, on a scratch
 * database of the default host (cloned from the template the plugin keeps,
 * in strategy `database`).
 */
async function diffOptions (options: ResolvedOptions): Promise<MigrationDiffOptions> {
  const { tenantMigratorFor } = await import('../../database/tenant-migrator.js')
  if (options.tenantMigrations === null) throw new CliConfigError('The tenancy options have no tenantMigrations: give it { path, pathTs } (the folder of your tenant migrations) to make and check them.')
  const db = options.database
  const server = db.hosts[db.defaultHost] as string
  const template = options.strategy === 'database' && options.provisioning.template
    ? { name: `${db.prefix}template`, migrator: tenantMigratorFor(options) }
    : null
  return { server, prefix: db.prefix, entities: options.tenantEntities, migrations: options.tenantMigrations, template, shared: options.strategy === 'shared' }
}

/** migration:create, migration:check and tenants:status. */
export function registerMigrationCommands (program: Command, global: () => GlobalOptions): void {
  program.command('migration:create')
    .description('write a tenant migration from the difference between your tenant entities and what your tenant migrations make')
    .argument('[name]', 'a name for the migration (letters, digits, underscores)')
    .option('--json', 'print what was written as JSON')
    .action(async (name: string | undefined, flags: { json?: boolean }) => {
      const { createTenantMigration } = await import('../../database/migration-diff.js')
      const made = await createTenantMigration(await diffOptions(await resolvedOptions(global())), name)
      if (flags.json === true) printJson(made === null ? { created: null } : { created: `${made.folder}/${made.fileName}`, statements: made.up })
      else if (made === null) process.stdout.write('Your tenant entities and tenant migrations agree: there is nothing to migrate.\n')
      else process.stdout.write(`Wrote ${made.folder}/${made.fileName} (${made.up.length} statement${made.up.length === 1 ? '' : 's'}). Apply it with fastify-tenancy tenants:migrate.\n`)
    })

  program.command('migration:check')
    .description('exit 1 when your tenant entities and your tenant migrations disagree (for CI)')
    .option('--json', 'print the statements a migration would need, as JSON')
    .action(async (flags: { json?: boolean }) => {
      const { tenantEntityDiff } = await import('../../database/migration-diff.js')
      const diff = await tenantEntityDiff(await diffOptions(await resolvedOptions(global())))
      if (flags.json === true) printJson({ ok: diff.up.length === 0, statements: diff.up })
      if (diff.up.length === 0) {
        if (flags.json !== true) process.stdout.write('Your tenant entities and tenant migrations agree.\n')
        return
      }
      const missing = diff.up.length === 1 ? '1 statement is missing' : `${diff.up.length} statements are missing`
      if (flags.json !== true) {
        const error = new TenantMigrationsOutdatedError(missing)
        process.stderr.write(`${error.code}: ${error.message}\n${diff.up.map((s) => `  ${s}`).join('\n')}\n`)
      }
      process.exitCode = EXIT.failed
    })

  program.command('tenants:status')
    .description('each tenant\'s tenant migrations: how many ran, and which are pending')
    .option('--tenants <names>', 'only these tenants: identifiers or keys, comma-separated', collectList)
    .option('--skip-tenants <names>', 'leave these tenants out', collectList)
    .option('--concurrency <n>', `how many tenants are read at once (default ${DEFAULT_CONCURRENCY})`)
    .option('--json', 'print a JSON array: key, identifier, executed, pending (or error)')
    .action(async (flags: { tenants?: string[], skipTenants?: string[], concurrency?: string, json?: boolean }) => {
      const only = names('--tenants', flags.tenants)
      const skip = names('--skip-tenants', flags.skipTenants)
      const at = concurrency(flags.concurrency, DEFAULT_CONCURRENCY)
      await withApp(global(), async (app) => {
        const chosen = await app.tenancy.tenants.select(only, skip)
        const tenants = only !== undefined ? chosen : chosen.filter((t) => t.status === 'active' || t.status === 'suspended')
        const rows = await mapLimit(tenants, at, async (t) => {
          try {
            const status = await app.tenancy.migrationStatus(t)
            return { key: t.key, identifier: t.identifier, executed: status.executed, pending: status.pending }
          } catch (error) {
            return { key: t.key, identifier: t.identifier, executed: [], pending: [], error: (error as Error).message }
          }
        })
        if (flags.json === true) printJson(rows)
        else if (rows.length === 0) process.stdout.write('No tenants.\n')
        else {
          printTable(rows.map((r) => ({
            identifier: r.identifier,
            ran: r.error === undefined ? String(r.executed.length) : '?',
            newest: r.executed.at(-1) ?? '',
            pending: r.error !== undefined ? `cannot be read: ${r.error}` : r.pending.length === 0 ? 'none' : r.pending.join(', ')
          })), ['identifier', 'ran', 'newest', 'pending'])
        }
        if (rows.some((r) => r.error !== undefined)) process.exitCode = EXIT.failed
      })
    })
}
