import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import type { DriftVerdict } from '../../database/schema-drift.js'
import type { ResolvedOptions } from '../../options/index.js'
import type { MigrationDiffOptions } from '../../database/migration-diff.js'
import { withApp, type GlobalOptions } from '../app.js'
import { resolvedOptions } from '../config.js'
import { collectList, concurrency, names } from '../arguments.js'
import { EXIT } from '../errors.js'
import { CliConfigError, TenantMigrationsOutdatedError } from '../../errors.js'
import { printJson, printTable } from '../output.js'
import { mapLimit } from '../../support/map-limit.js'
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
    .description('each tenant\'s tenant migrations (applied, pending, unknown) from the central record; --verify connects and compares each schema with the template\'s')
    .option('--tenants <names>', 'only these tenants: identifiers or keys, comma-separated', collectList)
    .option('--skip-tenants <names>', 'leave these tenants out', collectList)
    .option('--concurrency <n>', `how many tenants are read at once with --verify (default ${DEFAULT_CONCURRENCY})`)
    .option('--verify', 'connect to each tenant: read its migrations and compare its schema with the template\'s (a checksum of the catalog); exit 1 when one was changed by hand')
    .option('--json', 'print a JSON array: key, identifier, executed (applied), pending, unknown (and verdict, differences with --verify; error)')
    .action(async (flags: { tenants?: string[], skipTenants?: string[], concurrency?: string, verify?: boolean, json?: boolean }) => {
      const only = names('--tenants', flags.tenants)
      const skip = names('--skip-tenants', flags.skipTenants)
      const at = concurrency(flags.concurrency, DEFAULT_CONCURRENCY)
      const options = await resolvedOptions(global())
      const shared = options.strategy === 'shared'
      await withApp(global(), async (app) => {
        const chosen = await app.tenancy.tenants.select(only, skip)
        const tenants = only !== undefined ? chosen : chosen.filter((t) => t.status === 'active' || t.status === 'suspended')
        const rows = flags.verify === true && !shared
          ? await mapLimit(tenants, at, async (t): Promise<StatusRow> => {
            try {
              const status = await app.tenancy.migrationStatus(t)
              const drift = await app.tenancy.verifySchema(t)
              return {
                key: t.key,
                identifier: t.identifier,
                executed: status.executed,
                pending: status.pending,
                unknown: status.unknown ?? [],
                verdict: drift.verdict,
                differences: drift.differences
              }
            } catch (error) {
              return { key: t.key, identifier: t.identifier, executed: [], pending: [], unknown: [], error: (error as Error).message }
            }
          })
          : await recorded(app, tenants)
        if (flags.json === true) printJson(rows)
        else {
          if (shared) process.stdout.write('Strategy shared: every tenant uses the one set of shared tables, so each row shows their migrations' + (flags.verify === true ? '; there is no schema per tenant to verify.\n' : '.\n'))
          if (rows.length === 0) process.stdout.write('No tenants.\n')
          else {
            const columns = ['identifier', 'ran', 'newest', 'pending']
            if (rows.some((r) => r.unknown.length > 0)) columns.push('unknown')
            if (flags.verify === true && !shared) columns.push('schema')
            printTable(rows.map(tableRow), columns)
          }
        }
        const changed = rows.filter((r) => r.verdict === 'changed')
        if (changed.length > 0) {
          const list = changed.map((r) => r.identifier).join(', ')
          process.stderr.write(`${changed.length} tenant schema(s) differ from the template's (changed by hand?): ${list}. --json lists the differences; bring them back with a migration or by hand.\n`)
        }
        const unreadable = rows.filter((r) => r.error !== undefined)
        if (unreadable.length > 0 && flags.json !== true) process.stderr.write(`${unreadable.length} tenant(s) could not be read: ${unreadable.map((r) => r.identifier).join(', ')}.\n`)
        if (changed.length > 0 || unreadable.length > 0) process.exitCode = EXIT.failed
      })
    })
}

/** One tenant's line of tenants:status. */
interface StatusRow {
  key: string
  identifier: string
  /** Applied: the app's tenant migrations it has run. */
  executed: string[]
  pending: string[]
  /** Run by the tenant, but not among the app's tenant migrations. */
  unknown: string[]
  /** False when the central record has nothing for it yet (--verify reads it). */
  recorded?: boolean
  checkedAt?: string
  verdict?: DriftVerdict
  differences?: string[]
  error?: string
}

/** The rows from the central record: no tenant is connected to. */
async function recorded (app: FastifyInstance, tenants: readonly Tenant[]): Promise<StatusRow[]> {
  const states = await app.tenancy.migrationStates(tenants.map((t) => t.key))
  return tenants.map((t) => {
    const state = states.get(t.key)
    if (state === undefined) return { key: t.key, identifier: t.identifier, executed: [], pending: [], unknown: [], recorded: false }
    const known = state.executed.filter((name) => !state.unknown.includes(name))
    return {
      key: t.key,
      identifier: t.identifier,
      executed: known,
      pending: state.pending,
      unknown: state.unknown,
      recorded: true,
      checkedAt: state.checkedAt.toISOString(),
      ...(state.error === null ? {} : { error: state.error })
    }
  })
}

function tableRow (r: StatusRow): Record<string, string> {
  const schema = r.verdict === undefined ? '' : r.verdict === 'matches' ? 'matches the template' : r.verdict === 'changed' ? `CHANGED (${r.differences?.length ?? 0} difference(s))` : 'not compared: pending migrations'
  return {
    identifier: r.identifier,
    ran: r.error !== undefined ? '?' : r.recorded === false ? 'not recorded yet (--verify reads it)' : String(r.executed.length),
    newest: r.executed.at(-1) ?? '',
    pending: r.error !== undefined ? `cannot be read: ${r.error}` : r.recorded === false ? '' : r.pending.length === 0 ? 'none' : r.pending.join(', '),
    unknown: r.unknown.length === 0 ? '' : r.unknown.join(', '),
    schema
  }
}
