import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import type { TenantScope } from '../../context/tenant-scope.js'
import type { FanOutOptions, TenantResult } from '../../lifecycle/tenant-migrations.js'
import { mapLimit } from '../../support/map-limit.js'
import { withApp, type GlobalOptions } from '../app.js'
import { collectList, concurrency, names } from '../arguments.js'
import { hostname, userInfo } from 'node:os'
import { printJson, printTable } from '../output.js'
import { printRollout, rolloutReporter } from '../rollout-output.js'
import { parseCanary, parseDuration } from '../../rollouts/rollout-input.js'
import { ROLLOUT_ORDERS, type Rollout, type RolloutInput, type RolloutOperation, type RolloutOrder } from '../../rollouts/rollout-types.js'
import { CliUsageError } from '../../errors.js'
import { progressReporter, summarize } from '../output.js'
import { importDefault } from '../modules.js'
import { resolvedOptions } from '../config.js'

/** The default number of tenants worked on at once. */
export const DEFAULT_CONCURRENCY = 4

interface FanOutFlags { tenants?: string[], skipTenants?: string[], concurrency?: string, json?: boolean }

interface Selection { tenants?: string[], skipTenants?: string[], concurrency: number, json: boolean }

function withFanOutOptions (command: Command, json = 'print the per-tenant results as a JSON array'): Command {
  return command
    .option('--tenants <names>', 'only these tenants: identifiers or keys, comma-separated', collectList)
    .option('--skip-tenants <names>', 'leave these tenants out', collectList)
    .option('--concurrency <n>', `how many tenants at once (default ${DEFAULT_CONCURRENCY})`)
    .option('--json', json)
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
async function fanOut (
  global: GlobalOptions, s: Selection, label: string, work: (app: FastifyInstance, tenants: Tenant[], options: FanOutOptions) => Promise<TenantResult[]>
): Promise<number> {
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
      const message = (error as Error)?.message ?? String(error)
      result = { key: tenant.key, identifier: tenant.identifier, ok: false, migrations: [], error: message, ms: performance.now() - started }
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
async function sharedTablesFirst (global: GlobalOptions, direction: 'up' | 'down'): Promise<{ ran: string[], ms: number, schema: string } | null> {
  const options = await resolvedOptions(global)
  if (options.shared === null) return null
  const [{ migrateShared }, { tenantMigratorFor }] = await Promise.all([import('../../database/shared/shared-schema.js'), import('../../database/tenant-migrator.js')])
  const started = performance.now()
  const appRole = decodeURIComponent(new URL(options.shared.url).username)
  const migrator = tenantMigratorFor(options)
  try {
    const ran = await migrateShared({ ...options.shared, appRole }, migrator, direction)
    return { ran, ms: performance.now() - started, schema: options.shared.schema }
  } finally {
    await migrator.close()
  }
}

/** Each tenant's result of the one shared migration. */
function sharedResults (tenants: Tenant[], shared: { ran: string[], ms: number }, options: FanOutOptions): TenantResult[] {
  return tenants.map((tenant) => {
    const result: TenantResult = { key: tenant.key, identifier: tenant.identifier, ok: true, migrations: shared.ran, ms: shared.ms }
    options.onResult?.(result)
    return result
  })
}

interface RolloutFlags extends FanOutFlags {
  resume?: string
  halt?: string
  canary?: string
  canaryWait?: string
  maxFailures?: string
  order?: string
  host?: string[]
  status?: string[]
  lease?: string
}

function withRolloutOptions (command: Command): Command {
  return withFanOutOptions(command, 'print JSON lines: the rollout\'s start, one line per tenant, its end (a failure: one object with code and message)')
    .option('--resume <id>', 'continue rollout <id>: after a crash, after its canary wave (the go), or after a halt')
    .option('--halt <id>', 'halt rollout <id>: its runner finishes the tenants in flight and starts no more')
    .option('--canary <n|names>', 'a first wave (the first n tenants, or these identifiers), then wait for a go (--resume)')
    .option('--canary-wait <duration>', 'after a good canary wave, go on by itself after this long (30s, 10m, 1h)')
    .option('--max-failures <n|%>', 'halt the rollout when this many tenants failed (5, or 10%)')
    .option('--order <field>', `the order tenants run in: ${ROLLOUT_ORDERS.join(', ')} (default identifier)`)
    .option('--host <names>', 'only tenants on these database hosts', collectList)
    .option('--status <names>', 'only tenants with these statuses (default active,suspended)', collectList)
    .option('--lease <duration>', 'how long another instance waits before it may take over when this one dies (default 30s)')
}

/** The rollout the flags describe; --resume and --halt take none of them. */
function rolloutInput (operation: RolloutOperation, flags: RolloutFlags, s: Selection): RolloutInput {
  return {
    operation,
    ...(s.tenants === undefined ? {} : { tenants: s.tenants }),
    ...(s.skipTenants === undefined ? {} : { skipTenants: s.skipTenants }),
    ...(flags.host === undefined ? {} : { hosts: names('--host', flags.host) }),
    ...(flags.status === undefined ? {} : { statuses: names('--status', flags.status) }),
    concurrency: s.concurrency,
    ...(flags.canary === undefined ? {} : { canary: parseCanary(flags.canary) }),
    ...(flags.canaryWait === undefined ? {} : { canaryWaitMs: parseDuration(flags.canaryWait, '--canary-wait') }),
    ...(flags.maxFailures === undefined ? {} : { maxFailures: flags.maxFailures }),
    ...(flags.order === undefined ? {} : { order: flags.order as RolloutOrder }),
    ...(flags.lease === undefined ? {} : { leaseMs: parseDuration(flags.lease, '--lease') }),
    startedBy: `${userInfo().username}@${hostname()} (cli)`
  }
}

const SELECTING = ['tenants', 'skipTenants', 'canary', 'canaryWait', 'maxFailures', 'order', 'host', 'status', 'lease', 'concurrency'] as const

/** A rollout: started from the flags, or resumed, or halted; the exit code is 0 only when it ended (or waits) without a failure. */
async function rollout (global: GlobalOptions, operation: RolloutOperation, label: string, flags: RolloutFlags, s: Selection): Promise<number> {
  if (flags.resume !== undefined && flags.halt !== undefined) throw new CliUsageError('Give --resume or --halt, not both.')
  const id = flags.resume ?? flags.halt
  const given = SELECTING.filter((k) => flags[k] !== undefined)
  if (id !== undefined && given.length > 0) throw new CliUsageError(`--${flags.resume !== undefined ? 'resume' : 'halt'} works on a rollout with the options it was started with; leave out ${given.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')}.`)
  const input = id === undefined ? rolloutInput(operation, flags, s) : null
  return await withApp(global, async (app) => {
    const rollouts = app.tenancy.rollouts
    const reporter = rolloutReporter(label, s.json)
    if (flags.halt !== undefined) {
      const halted = await rollouts.halt(flags.halt, 'halted from the command line')
      if (s.json) printJson({ type: 'rollout', event: 'halt', id: halted.id, status: halted.status, counts: halted.counts })
      else process.stdout.write(`Rollout ${halted.id} is halted; its runner finishes the tenants in flight. ${halted.counts.pending} tenants are pending.\n`)
      return 0
    }
    let current: Rollout
    if (flags.resume !== undefined) {
      current = await rollouts.get(flags.resume)
      if (current.operation !== operation) throw new CliUsageError(`Rollout ${current.id} is a ${current.operation}: resume it with tenants:${current.operation} --resume ${current.id}.`)
    } else {
      current = await rollouts.start(input as RolloutInput, { onResult: reporter.onResult })
    }
    // The header once the rollout runs here (a resume refused, busy or finished, prints only its error).
    let begun = false
    const begin = (): void => { if (!begun) { begun = true; reporter.begin(current) } }
    const onResult = (result: Parameters<typeof reporter.onResult>[0]): void => { begin(); reporter.onResult(result) }
    if (flags.resume === undefined) begin()
    const final = flags.resume !== undefined
      ? await rollouts.resume(current.id, { onResult })
      : await rollouts.run(current.id, { onResult })
    begin()
    return reporter.end(final)
  })
}

/** Strategy `shared`: the shared tables, migrated once; each tenant's result is that one (JSON lines with --json). */
async function sharedFanOut (global: GlobalOptions, s: Selection, label: string, shared: { ran: string[], ms: number, schema: string }, operation: 'migrate' | 'rollback'): Promise<number> {
  return await withApp(global, async (app) => {
    const tenants = await chosenTenants(app, s)
    const progress = progressReporter(tenants.length, label, s.json)
    const results = sharedResults(tenants.filter((t) => t.isolation == null), shared, { onResult: progress.onResult })
    // Isolated tenants have the shared tables' shape in databases (or schemas) of their own: each is migrated after the shared tables.
    const isolated = tenants.filter((t) => t.isolation != null).map((t) => t.key)
    if (isolated.length > 0) results.push(...await app.tenancy[operation]({ tenants: isolated, concurrency: s.concurrency, onResult: progress.onResult }))
    progress.stop()
    if (s.json) {
      for (const r of results) printJson({ type: 'tenant', ...r, status: r.ok ? 'done' : 'failed', ms: Math.round(r.ms) })
      return results.every((r) => r.ok) ? 0 : 1
    }
    // The shared tables were migrated whether or not any tenant exists yet: say so first.
    const ran = shared.ran.length === 0 ? 'no migration to run' : `ran ${shared.ran.join(', ')}`
    process.stdout.write(`The shared tables in schema ${shared.schema}: ${ran}; row-level security is in place.\n`)
    return summarize(results, false, label)
  })
}

/** tenants:migrate, tenants:rollback, tenants:seed and tenants:run. */
export function registerFanOutCommands (program: Command, global: () => GlobalOptions): void {
  const operations = [
    { name: 'tenants:migrate', operation: 'migrate', label: 'Migrate', description: 'run pending tenant migrations in each tenant database, as a rollout that --resume continues after a crash' },
    { name: 'tenants:rollback', operation: 'rollback', label: 'Roll back', description: 'roll each tenant database back by one migration (a rollout)' },
    { name: 'tenants:seed', operation: 'seed', label: 'Seed', description: 'run the provisioning seeder (provisioning.seeder) in each tenant (a rollout)' }
  ] as const
  for (const op of operations) {
    withRolloutOptions(program.command(op.name).description(op.description)).action(async (flags: RolloutFlags) => {
      const s = selection(flags)
      const shared = op.operation === 'seed' || flags.resume !== undefined || flags.halt !== undefined ? null : await sharedTablesFirst(global(), op.operation === 'migrate' ? 'up' : 'down')
      process.exitCode = shared === null ? await rollout(global(), op.operation, op.label, flags, s) : await sharedFanOut(global(), s, op.label, shared, op.operation === 'migrate' ? 'migrate' : 'rollback')
    })
  }

  program.command('tenants:rollouts')
    .description('list the rollouts, newest first, or show one: status, waves, counts, failures with their reasons')
    .argument('[id]', 'a rollout id')
    .option('--page <n>', 'which page of 20 (default 1)')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, flags: { page?: string, json?: boolean }) => {
      const page = concurrency(flags.page === undefined ? undefined : flags.page, 1, '--page')
      await withApp(global(), async (app) => {
        if (id !== undefined) {
          const one = await app.tenancy.rollouts.get(id)
          if (flags.json === true) { printJson(one); return }
          printRollout(one)
          return
        }
        const { rollouts, total } = await app.tenancy.rollouts.list({ page, perPage: 20 })
        if (flags.json === true) { printJson({ rollouts, total }); return }
        if (rollouts.length === 0) { process.stdout.write('No rollouts.\n'); return }
        printTable(rollouts.map((r) => ({
          id: r.id,
          operation: r.operation,
          status: r.status,
          // The ledger's own words, as the detail view and --json have them.
          done: String(r.counts.done),
          skipped: String(r.counts.skipped),
          failed: String(r.counts.failed),
          running: String(r.counts.running),
          pending: String(r.counts.pending),
          'started by': r.startedBy,
          created: r.createdAt.toISOString().slice(0, 16).replace('T', ' ')
        })), ['id', 'operation', 'status', 'done', 'skipped', 'failed', 'running', 'pending', 'started by', 'created'])
        if (total > page * 20) process.stdout.write(`Page ${page} of ${Math.ceil(total / 20)}: --page ${page + 1} for more.\n`)
      })
    })

  withFanOutOptions(program.command('tenants:run')
    .description('run a module\'s default export, (scope) => ..., once in each tenant\'s context')
    .argument('<module>', 'path of an ES module (.mjs, .js or .ts)'))
    .action(async (modulePath: string, flags: FanOutFlags) => {
      const s = selection(flags)
      const task = await loadTask(modulePath)
      process.exitCode = await fanOut(global(), s, 'Run', async (app, tenants, options) => await runInEach(app, tenants, options, task))
    })
}
