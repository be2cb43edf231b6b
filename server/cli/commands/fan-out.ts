import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import type { TenantScope } from '../../context/tenant-scope.js'
import type { FanOutOptions, TenantResult } from '../../lifecycle/tenant-migrations.js'
import { mapLimit } from '../../lifecycle/each-tenant.js'
import { withApp, type GlobalOptions } from '../app.js'
import { collectList, concurrency, names } from '../arguments.js'
import { CliUsageError } from '../../errors.js'
import { progressReporter, summarize } from '../output.js'
import { importDefault } from '../modules.js'
import { resolvedOptions } from '../config.js'

/** The default number of tenants worked on at once. */
export const DEFAULT_CONCURRENCY = 4

interface FanOutFlags { tenants?: string[], skipTenants?: string[], concurrency?: string, json?: boolean }

interface Selection { tenants?: string[], skipTenants?: string[], concurrency: number, json: boolean }

function withFanOutOptions (command: Command): Command {
  return command
    .option('--tenants <names>', 'only these tenants: identifiers or keys, comma-separated', collectList)
    .option('--skip-tenants <names>', 'leave these tenants out', collectList)
    .option('--concurrency <n>', `how many tenants at once (default ${DEFAULT_CONCURRENCY})`)
    .option('--json', 'print the per-tenant results as a JSON array')
}

function selection (flags: FanOutFlags): Selection {
  return {
    tenants: names('--tenants', flags.tenants),
    skipTenants: names('--skip-tenants', flags.skipTenants),
    concurrency: concurrency(flags.concurrency, DEFAULT_CONCURRENCY),
    json: flags.json === true
  }
}

/**
 * The tenants a fan-out works on, by the library's rule: the named ones, or
 * every tenant with a database (active or suspended) when none are named,
 * minus the skipped. Unknown names throw FST_TENANCY_TENANT_NOT_FOUND.
 */
async function chosenTenants (app: FastifyInstance, s: Selection): Promise<Tenant[]> {
  const chosen = await app.tenancy.tenants.select(s.tenants, s.skipTenants)
  return s.tenants !== undefined ? chosen : chosen.filter((t) => t.status === 'active' || t.status === 'suspended')
}

/** Runs a fan-out with progress and the summary; the exit code is 0 only when every tenant succeeded. */
async function fanOut (global: GlobalOptions, s: Selection, label: string, work: (app: FastifyInstance, tenants: Tenant[], options: FanOutOptions) => Promise<TenantResult[]>): Promise<number> {
  return await withApp(global, async (app) => {
    const tenants = await chosenTenants(app, s)
    const progress = progressReporter(tenants.length, label, s.json)
    let results: TenantResult[]
    try {
      results = await work(app, tenants, { tenants: s.tenants, skipTenants: s.skipTenants, concurrency: s.concurrency, onResult: progress.onResult })
    } finally {
      progress.stop()
    }
    return summarize(results, s.json, label)
  })
}

/** Loads a `tenants:run` module; its default export is called once per tenant. */
async function loadTask (modulePath: string): Promise<(scope: TenantScope) => unknown> {
  const task = await importDefault(modulePath, 'module')
  if (typeof task !== 'function') throw new CliUsageError(`${modulePath} must export a function as its default export: (scope) => { ... }.`)
  return task as (scope: TenantScope) => unknown
}

/** Runs `task` in each tenant's context (app.tenancy.run), `concurrency` at a time; a failure is that tenant's result. */
async function runInEach (app: FastifyInstance, tenants: Tenant[], options: FanOutOptions, task: (scope: TenantScope) => unknown): Promise<TenantResult[]> {
  return await mapLimit(tenants, options.concurrency ?? DEFAULT_CONCURRENCY, async (tenant) => {
    const started = performance.now()
    let result: TenantResult
    try {
      await app.tenancy.run(tenant, async (scope) => { await task(scope) })
      result = { key: tenant.key, identifier: tenant.identifier, ok: true, migrations: [], ms: performance.now() - started }
    } catch (error) {
      result = { key: tenant.key, identifier: tenant.identifier, ok: false, migrations: [], error: (error as Error)?.message ?? String(error), ms: performance.now() - started }
    }
    options.onResult?.(result)
    return result
  })
}

/**
 * Strategy `shared`: the shared tables are migrated once for every tenant,
 * before the plugin registers (which it refuses while a tenant table lacks
 * its row-level security: a first migrate is what makes them). Returns the
 * migrations run, or null in the other strategies.
 */
async function sharedTablesFirst (global: GlobalOptions, direction: 'up' | 'down'): Promise<{ ran: string[], ms: number } | null> {
  const options = await resolvedOptions(global)
  if (options.shared === null) return null
  const [{ migrateShared }, { tenantMigratorFor }] = await Promise.all([import('../../database/shared/shared-schema.js'), import('../../database/tenant-migrator.js')])
  const started = performance.now()
  const appRole = decodeURIComponent(new URL(options.shared.url).username)
  const ran = await migrateShared({ ...options.shared, appRole }, tenantMigratorFor(options), direction)
  return { ran, ms: performance.now() - started }
}

/** Each tenant's result of the one shared migration. */
function sharedResults (tenants: Tenant[], shared: { ran: string[], ms: number }, options: FanOutOptions): TenantResult[] {
  return tenants.map((tenant) => {
    const result: TenantResult = { key: tenant.key, identifier: tenant.identifier, ok: true, migrations: shared.ran, ms: shared.ms }
    options.onResult?.(result)
    return result
  })
}

/** tenants:migrate, tenants:rollback, tenants:seed and tenants:run. */
export function registerFanOutCommands (program: Command, global: () => GlobalOptions): void {
  const operations = [
    { name: 'tenants:migrate', label: 'Migrate', description: 'run pending tenant migrations in each tenant database', run: async (app: FastifyInstance, o: FanOutOptions) => await app.tenancy.migrate(o) },
    { name: 'tenants:rollback', label: 'Roll back', description: 'roll each tenant database back by one migration', run: async (app: FastifyInstance, o: FanOutOptions) => await app.tenancy.rollback(o) },
    { name: 'tenants:seed', label: 'Seed', description: 'run the provisioning seeder (provisioning.seeder) in each tenant', run: async (app: FastifyInstance, o: FanOutOptions) => await app.tenancy.seed(o) }
  ]
  for (const op of operations) {
    withFanOutOptions(program.command(op.name).description(op.description)).action(async (flags: FanOutFlags) => {
      const s = selection(flags)
      const shared = op.name === 'tenants:seed' ? null : await sharedTablesFirst(global(), op.name === 'tenants:migrate' ? 'up' : 'down')
      process.exitCode = await fanOut(global(), s, op.label, async (app, tenants, options) => shared === null ? await op.run(app, options) : sharedResults(tenants, shared, options))
    })
  }

  withFanOutOptions(program.command('tenants:run')
    .description('run a module\'s default export, (scope) => ..., once in each tenant\'s context')
    .argument('<module>', 'path of an ES module (.mjs, .js or .ts)'))
    .action(async (modulePath: string, flags: FanOutFlags) => {
      const s = selection(flags)
      const task = await loadTask(modulePath)
      process.exitCode = await fanOut(global(), s, 'Run', async (app, tenants, options) => await runInEach(app, tenants, options, task))
    })
}
