import { IsolationLevel } from '@mikro-orm/core'
import type { FastifyBaseLogger } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { ResolvedOptions } from './options/index.js'
import type { TenancyApi } from './tenancy-api.js'
import type { Tenant } from './tenant.js'
import type { EntityManager } from '@mikro-orm/postgresql'
import { quoteIdent } from './database/names.js'
import { databaseFault } from './database/database-faults.js'
import { CentralNotMigratedError, NoTenantContextError } from './errors.js'
import { misuse } from './misuse.js'
import { centralTables } from './database/central-schema.js'
import { TenantContext } from './context/tenant-context.js'
import { TenantScopes } from './context/tenant-scopes.js'
import { TenancyEvents } from './events/tenancy-events.js'
import { makeProvider } from './providers/make-provider.js'
import { CachedTenantProvider } from './providers/cached-provider.js'
import { tenantDirectory } from './lifecycle/tenant-directory.js'
import { invalidatingSubscriber } from './providers/invalidating-subscriber.js'
import { followTenantChanges, type TenantChange } from './providers/invalidation.js'
import { CentralListener } from './database/central-listener.js'
import { LockPools, tenantLocker } from './database/advisory-locks.js'
import { buildResolvers } from './identification/resolvers.js'
import { TenantIdentification } from './identification/tenant-identification.js'
import type { TenantConnections } from './database/tenant-connections.js'
import { tenantPools } from './database/tenant-pools.js'
import { databaseStrategy, schemaStrategy } from './database/strategy.js'
import { TenantTargets } from './database/tenant-targets.js'
import { assertSafeName } from './database/names.js'
import { tenantMigratorFor, type MigrationStatus } from './database/tenant-migrator.js'
import { sharedStrategy } from './database/shared/shared-strategy.js'
import { sharedTenantEntities } from './database/shared/tenant-entities.js'
import { assertRlsReady } from './database/shared/rls-guard.js'
import { prepareIsolated, sharedMigrationStatus } from './database/shared/shared-schema.js'
import { readSecret } from './database/shared/rls-policies.js'
import { ownerUrlOf } from './database/tenant-target.js'
import { withServer } from './database/tenant-database.js'
import { executedMigrations } from './moves/target-schema.js'
import { databaseBootstrapper } from './bootstrappers/database.js'
import { loggerBootstrapper } from './bootstrappers/logger.js'
import { storageBootstrapper } from './bootstrappers/storage.js'
import { cacheBootstrapper } from './bootstrappers/cache.js'
import { TenantLifecycle } from './lifecycle/tenants.js'
import { TenantMigrations, type FanOutOptions, type TenantResult } from './lifecycle/tenant-migrations.js'
import { MigrationStates, type MigrationState } from './lifecycle/migration-states.js'
import { Rollouts } from './rollouts/rollouts.js'
import { RolloutLedger } from './rollouts/rollout-ledger.js'
import { MigratingMarks } from './lifecycle/migrating-marks.js'
import { MigrationGate } from './lifecycle/migration-gate.js'
import { SchemaVerifier } from './database/schema-drift.js'
import { QueueService } from './jobs/queue-service.js'
import { TenantJobs } from './jobs/tenant-jobs.js'
import { TenantClusters } from './clusters/tenant-clusters.js'
import { clusterObserver } from './clusters/observer.js'
import { createSyncing } from './sync/syncing.js'
import { sharedAsTenant } from './sync/shared-tenant.js'
import { moveTenant } from './clusters/rules.js'
import { TenantUpdates } from './lifecycle/tenant-updates.js'
import { TenantStatusChanges } from './lifecycle/tenant-status.js'
import { TenantDomains, domainsOf } from './lifecycle/tenant-domains.js'
import { TenantListings } from './lifecycle/tenant-listings.js'
import { FormerNames } from './renames/former-names.js'
import { RenameRedirects } from './renames/redirect.js'
import { MaintenanceMode } from './maintenance/maintenance-mode.js'
import { Impersonation } from './impersonation/impersonation.js'
import { RequestStats } from './telemetry/request-stats.js'
import { RequestHold } from './moves/request-hold.js'
import { MoveStore } from './moves/move-store.js'
import { TenantMover } from './moves/tenant-mover.js'
import { TenantBundles } from './moves/tenant-bundles.js'
import { BundleResources, type CentralSnapshot } from './moves/bundle-resources.js'
import { TenantSwap } from './moves/tenant-swap.js'
import { Rebalancer } from './moves/rebalance.js'
import { centralSql } from './database/central-sql.js'

/**
 * What the plugin needs besides the public API: the request path (identify,
 * open and close scopes, enter the context) and the runtime's own start and
 * close. Never on `app.tenancy`.
 */
export interface TenancyRuntime {
  api: TenancyApi
  identification: TenantIdentification
  scopes: TenantScopes
  context: TenantContext
  /** Starts following tenant changes made elsewhere, and the sync queue. */
  start: () => Promise<void>
  /** Waits for background work (spare databases being cloned). */
  idle: () => Promise<void>
  close: () => Promise<void>
  options: ResolvedOptions
  connections: TenantConnections
  /** Redirects requests for a tenant's former names. */
  renames: RenameRedirects
  /** Answers tenant requests while their tenant is in maintenance. */
  maintenance: MaintenanceMode
  impersonation: Impersonation
  /** Per-tenant request counts and latency, fed by the plugin. */
  requestStats: RequestStats
  /** The instance's one LISTEN connection (null when changes made elsewhere are not followed: `cache.listen` false). */
  listener: CentralListener | null
  /** Holds a moving tenant's requests at the switch, and counts each tenant's requests in flight. */
  hold: RequestHold
  /** The backend process id of the listener's connection (null when not listening), for operators and tests. */
  listenerPid: () => number | null
  /** Holds requests of a tenant being migrated, and refuses routes that require a migration it lacks. */
  migrationGate: MigrationGate
  /** The names of the tenant migrations (fastify-tenancy's own, then the app's). */
  knownMigrations: () => Promise<string[]>
  /** Strategy `schema`: true when the tenant's schema is gone (asked on `em`'s connection, already open); false elsewhere. */
  schemaGone: (tenant: Tenant, em: EntityManager) => Promise<boolean>
}

const runtimes = new WeakMap<TenancyApi, TenancyRuntime>()
/** The listener's heartbeat with `cache: false` (the cache's `heartbeatMs` default). */
const DEFAULT_HEARTBEAT_MS = 10_000

/** @internal The runtime behind an `app.tenancy`, for the plugin and the test suite. */
export function tenancyRuntime (api: TenancyApi): TenancyRuntime {
  const runtime = runtimes.get(api)
  if (runtime === undefined) throw misuse.notATenancy()
  return runtime
}

/**
 * The composition root: builds every part of the tenancy runtime in one
 * visible order, each from the few parts it needs, and returns the public
 * `app.tenancy` with the runtime the plugin drives. Nothing here is
 * process-wide; each registered plugin gets its own.
 */
export function createTenancy (options: ResolvedOptions, orm: MikroORM, log: FastifyBaseLogger): TenancyRuntime {
  const db = options.database
  const events = new TenancyEvents()
  const context = new TenantContext()

  // 1. What a tenant's tables are (our syncing bookkeeping first, when syncing
  // is on, then the app's own migrations), and where they live.
  const migrator = tenantMigratorFor(options)
  const strategyOptions = {
    migrator,
    prefix: db.prefix,
    suffix: db.suffix,
    template: options.provisioning.template ? assertSafeName(`${db.prefix}template`) : null,
    spares: options.provisioning.spares,
    onError: (error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not clone a spare tenant database') }
  }
  const shared = options.shared
  const strategy = shared !== null ? sharedStrategy(shared, { prefix: db.prefix, suffix: db.suffix }) : options.strategy === 'schema' ? schemaStrategy(strategyOptions) : databaseStrategy(strategyOptions)
  const targets = new TenantTargets({ hosts: db.hosts, defaultHost: db.defaultHost, prefix: db.prefix, suffix: db.suffix }, strategy)
  const targetOf = targets.of.bind(targets)
  // Strategy `shared`: every statement proves the tenant of the running context (database/shared/tenant-proof.ts).
  const keyOf = (): string | null => context.current()?.key ?? null
  // Warm connections for the per-tenant lifecycle locks (closed with the runtime).
  const lockPools = new LockPools()
  const pools = tenantPools({
    options,
    entities: shared === null ? options.tenantEntities : sharedTenantEntities(options.tenantEntities, keyOf),
    current: () => context.current(),
    scope: () => context.scope(),
    targetOf,
    centralPool: (orm.config.get('pool') as { max?: number } | undefined)?.max ?? 10,
    log
  })
  const connections = pools.connections

  // 2. Finding tenants: provider, its cache, and the resolvers in front.
  const provider = makeProvider(options.provider, options.providerDrivers, orm)
  const resolvers = buildResolvers(options)
  if (resolvers.some((r) => r.name === 'domain') && provider.byDomain === undefined) {
    throw misuse.domainLookupUnsupported(provider.name)
  }
  const cache = options.cache === false ? null : new CachedTenantProvider(provider, options.cache, options.clock)
  const lookups = cache ?? provider
  const execute = centralSql(orm)
  // Raw central SQL names our tables through this (they live in database.schema, beside the app's own).
  const tables = centralTables(orm)
  // Former names (renames): looked up when a name is unknown, forgotten with the cached tenants.
  const formerNames = new FormerNames({ execute, tables, now: options.clock, keepMs: options.renames.keepMs })
  const renames = new RenameRedirects({
    formerNames,
    tenants: lookups,
    domainsOf: async (key) => await domainsOf(orm, key),
    centralDomains: options.centralDomains,
    pathParameter: options.pathParameter
  })
  const invalidate = (): void => { cache?.invalidate(); formerNames.invalidate() }
  // A moving tenant's requests wait at the switch; they look the tenant up again, uncached, when it changes.
  const hold = new RequestHold({ find: async (key) => await provider.byKey(key), waitMs: db.acquireTimeoutMs, onSettled: (key) => { connections.retire(key) } })
  // What one change touched, and nothing else (a change to one tenant keeps the others cached).
  // A changed tenant's pools go too (after a move they would reach its old host), then its held requests look again.
  const forget = (change: TenantChange): void => {
    cache?.forget(change)
    formerNames.forget(change)
    for (const key of change.keys) connections.retire(key)
    hold.changed(change)
  }
  const identification = new TenantIdentification(resolvers, { centralDomains: options.centralDomains }, lookups, cache)

  // 3. The tenant context and what each scope gets.
  const scopes = new TenantScopes([
    databaseBootstrapper(connections, targetOf),
    loggerBootstrapper(),
    storageBootstrapper(options.storageRoot),
    cacheBootstrapper(options.cachePrefix),
    ...options.bootstrappers
  ], context, log)
  const runAsTenant = scopes.run.bind(scopes)

  // 3b. One LISTEN connection (past any pooler) for whatever follows changes made elsewhere: the tenant cache, renames, maintenance, migrations.
  const follows = options.cache === false || options.cache.listen
  const listener = follows
    ? new CentralListener({
      url: db.directUrl ?? db.url,
      heartbeatMs: options.cache === false ? DEFAULT_HEARTBEAT_MS : options.cache.heartbeatMs,
      // One warning per outage, with the fault (no stack: it is the driver's, not a bug); the retries at debug.
      onError: (error, first) => {
        const fault = databaseFault(error)
        const detail = fault === null
          ? { error: error.message }
          : { fault: { kind: fault.kind, code: fault.code, address: fault.address, detail: fault.detail } }
        if (first) log.warn(detail, 'fastify-tenancy: lost the central change listener; reconnecting (tenant changes made by other instances are seen once it is back)')
        else log.debug(detail, 'fastify-tenancy: the central change listener could not reconnect yet; trying again')
      },
      onResumed: () => { log.info('fastify-tenancy: the central change listener is listening again') }
    })
    : null
  // 4. Lifecycle, fan-out, jobs, clusters and syncing, each from its parts.
  const lifecycle = new TenantLifecycle({
    orm,
    events,
    strategy,
    connections,
    targetOf,
    runAsTenant,
    invalidate,
    forget,
    migrator,
    lock: tenantLocker(db.url, lockPools),
    log,
    settings: { centralDomains: options.centralDomains, hosts: db.hosts, defaultHost: db.defaultHost, now: options.clock, ...options.provisioning }
  })
  const updates = new TenantUpdates(orm, events, forget, moveTenant, options.centralDomains, options.clock)
  const statuses = new TenantStatusChanges(orm, events, forget)
  const domains = new TenantDomains(orm, events, forget, options.centralDomains, options.clock)
  const tenants = tenantDirectory(lookups, lifecycle, new TenantListings(orm), targets)
  // What each tenant database has run, as last seen: screens over the fleet read it instead of every database.
  const migrationStates = new MigrationStates(execute, tables, async () => await migrator.names())
  // Serving during a rollout: a tenant being migrated is marked (on every instance) and its requests wait;
  // a route that requires a migration the tenant lacks answers 503 FST_TENANCY_MIGRATING.
  const marks = new MigratingMarks({ execute, lockSource: lockPools.pool(db.url), listener })
  const gate = new MigrationGate({
    recorded: shared !== null
      ? async () => (await sharedMigrationStatus(shared, migrator)).executed
      : async (tenant) => await migrationStates.executedOf(tenant.key),
    read: async (tenant) => (await migrationStatus(tenant)).executed,
    idOf: shared !== null ? () => '*' : (tenant) => tenant.key,
    marks,
    waitMs: db.acquireTimeoutMs,
    listener
  })
  const settle = async (tenant: Tenant | null, operation: 'migrate' | 'rollback', ok: boolean): Promise<void> => {
    if (tenant === null) {
      await migrationStates.announce('*').catch(() => {})
      gate.forget('*')
      return
    }
    // A migrate that went through ran every known migration; anything else is read from the database.
    if (operation === 'migrate' && ok) {
      // Migrations another deploy ran stay recorded as unknown.
      const before = (await migrationStates.of([tenant.key]).catch(() => null))?.get(tenant.key)?.unknown ?? []
      await migrationStates.record(tenant.key, { executed: [...await migrator.names(), ...before] }).catch(() => {})
    } else await migrationStatus(tenant).catch(() => {})
    gate.forget(tenant.key)
  }
  const migrations = new TenantMigrations({ lifecycle, targetOf, runAsTenant, migrator, seeder: options.provisioning.seeder, shared, marks, settle })
  events.on('tenant.migrated', async ({ tenant }) => {
    await migrationStates.record(tenant.key, { executed: await migrator.names() }).catch((error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not record a tenant\'s migration state') })
  })
  const migrationStatus = async (tenant: Tenant): Promise<MigrationStatus> => {
    if (shared !== null) return await migrations.status(tenant)
    const since = Date.now()
    let status: MigrationStatus
    try {
      status = await migrations.status(tenant)
    } catch (error) {
      await migrationStates.record(tenant.key, { error: (error as Error).message }, since).catch(() => {})
      throw error
    }
    // Kept with the known ones, so the record shows what this deploy does not know (tenants:status, the Fleet page).
    await migrationStates.record(tenant.key, { executed: [...status.executed, ...status.unknown ?? []] }, since).catch(() => {})
    return status
  }
  /** A fan-out whose results are recorded as the tenants' migration states. */
  const fanOut = async (operation: 'migrate' | 'rollback' | 'seed', fanOutOptions: FanOutOptions): Promise<TenantResult[]> => {
    if (shared !== null) return await migrations.run(operation, fanOutOptions)
    const followed = migrationStates.follow(operation, fanOutOptions, async (key) => {
      const tenant = await lifecycle.find(key)
      if (tenant !== null) await migrationStatus(tenant).catch(() => {})
    })
    try {
      return await migrations.run(operation, followed.options)
    } finally {
      await followed.settled()
    }
  }
  // Rollouts: the ledger in the central database, each tenant through the same per-tenant path as the fan-out.
  const recheck = async (key: string): Promise<void> => {
    const tenant = await lifecycle.find(key)
    if (tenant !== null) await migrationStatus(tenant).catch(() => {})
  }
  const rollouts = new Rollouts({
    ledger: new RolloutLedger(execute, tables),
    select: async (names, skip) => await lifecycle.select(names, skip),
    states: async (keys) => await migrationStates.of(keys),
    migrations: async () => await migrator.names(),
    step: async (operation, tenant) => {
      const since = Date.now()
      const result = await migrations.one(operation, tenant)
      await migrationStates.recordResult(operation, result, recheck, since)
      return result
    },
    hosts: Object.keys(db.hosts),
    defaultHost: db.defaultHost,
    shared: shared !== null,
    canSeed: options.provisioning.seeder !== null
  })
  const migrationStatesOf = async (keys: readonly string[]): Promise<Map<string, MigrationState>> => {
    if (shared === null) return await migrationStates.of(keys)
    // Strategy `shared`: one set of shared tables, so one state for every tenant.
    const status = await sharedMigrationStatus(shared, migrator)
    const state: MigrationState = { executed: status.executed, pending: status.pending, unknown: [], error: null, checkedAt: new Date() }
    return new Map(keys.map((key) => [key, state]))
  }
  const verifier = new SchemaVerifier({ kind: strategy.kind, migrator, targetOf, templateName: `${db.prefix}template` })
  const queue = new QueueService(db.url, options.queueSchema, (error) => { log.warn({ err: error }, 'fastify-tenancy: job queue error') }, options.queueMaintenanceSeconds)
  const find = async (key: string): Promise<Tenant | null> => await lifecycle.find(key)
  const jobs = new TenantJobs({ queue, context, find, runAsTenant, log })
  const clusters = new TenantClusters({ orm, events, find, invalidate })
  const syncing = options.sync === null
    ? null
    : createSyncing({
      orm,
      connections,
      queues: queue,
      byKey: lookups.byKey.bind(lookups),
      select: async () => await lifecycle.select(),
      targetOf,
      scope: () => context.scope(),
      log,
      emit: async (event) => { await events.emit(event) },
      // Copies and outboxes are reached as their tenant: its proof (shared), its search_path (schema), its own connections (database).
      asTenant: sharedAsTenant(lookups.byKey.bind(lookups), runAsTenant)
    }, {
      ...options.sync,
      // A fan-out never takes more than half of a host's connection budget: requests keep the rest.
      concurrency: Math.min(options.sync.concurrency, Math.max(1, Math.floor((db.maxConnections ?? 32) / 2)))
    })
  syncing?.install()
  // A deleted tenant leaves no row in any synced resource's mapping.
  if (syncing !== null) events.on('tenant.deleted', async (event) => { await syncing.forgetTenant(event.tenant.key) })

  // 5. Following changes made elsewhere: the tenant cache and renames on the one LISTEN connection (made above).
  if (listener !== null) {
    followTenantChanges(listener, {
      onChange: (change) => { if (change === null) invalidate(); else forget(change) },
      // Down: nothing cached can be trusted (a change could not be heard); back: changes may have been missed.
      onListening: (listening) => { cache?.setListening(listening); invalidate() }
    })
  }

  // 6. Tenant operations: maintenance mode, impersonation links, request figures.
  const maintenance = new MaintenanceMode({
    execute,
    listener,
    tables,
    now: options.clock,
    onError: (error) => { log.warn({ err: error }, 'fastify-tenancy: maintenance mode could not follow changes; retrying') }
  })
  const impersonation = new Impersonation({ execute, tables, now: options.clock })
  const requestStats = new RequestStats()

  // 6b. Moving tenants between hosts, under their lifecycle lock (a delete undoes an unfinished move first).
  const moveStore = new MoveStore(orm, execute)
  const mover = new TenantMover({
    migrator,
    store: moveStore,
    lock: tenantLocker(db.url, lockPools),
    find,
    strategy,
    hosts: db.hosts,
    defaultHost: db.defaultHost,
    replicationUrls: options.moves.replicationUrls,
    connections,
    forget,
    hold,
    settings: options.moves,
    log,
    isolation: shared === null
      ? null
      : {
          prepare: async (target, executed) => {
            const secret = await readSecret(shared.centralUrl)
            const appRole = decodeURIComponent(new URL(shared.url).username)
            const kind = target.isolation === 'schema' ? 'schema' as const : 'database' as const
            const where = { kind, serverUrl: target.server, name: target.name, ownerUrl: ownerUrlOf(target), schema: target.schema ?? shared.schema }
            await prepareIsolated({ ...where, centralRole: shared.centralRole, appRole, secret, executed }, migrator)
          },
          sharedExecuted: async () => await withServer(shared.centralUrl, async (c) => await executedMigrations(c, shared.schema))
        }
  })
  events.on('tenant.deleting', async (event) => {
    if (await mover.status(event.tenant).then((m) => m?.state === 'running')) await mover.abortLocked(event.tenant.key, true)
  })

  // Central statements in one transaction: a snapshot (read only, repeatable read) or a change made whole.
  const centralTransaction = (readOnly: boolean): CentralSnapshot => async (fn) => await orm.em.fork().transactional(
    async (em) => await fn(async (sql, params) => await em.getConnection().execute(sql, params as any[], 'all', em.getTransactionContext())),
    readOnly ? { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true } : {})
  const swaps = new TenantSwap({
    tables,
    transaction: centralTransaction(false),
    lock: tenantLocker(db.url, lockPools),
    find,
    moving: async (key) => (await mover.status({ key }))?.state === 'running',
    hold: async (key, held) => { await moveStore.hold(key, held) },
    requests: hold,
    forget,
    drainMs: options.moves.drainMs
  })
  const rebalancer = new Rebalancer({
    strategy: strategy.kind,
    hosts: db.hosts,
    defaultHost: db.defaultHost,
    select: async () => await lifecycle.select(),
    targetOf,
    load: () => requestStats.snapshot(),
    move: async (tenant, moveOptions) => await mover.move(tenant, moveOptions)
  })
  const bundles = new TenantBundles({
    migrator,
    strategy,
    targetOf,
    hosts: db.hosts,
    defaultHost: db.defaultHost,
    shared,
    domainsOf: async (key) => await domainsOf(orm, key),
    find: async (name) => await lifecycle.find(name),
    create: async (input) => await lifecycle.create(input),
    resources: new BundleResources({
      resources: syncing?.api.resources ?? null,
      // One snapshot for every resource's mapping rows and central rows.
      snapshot: centralTransaction(true),
      attach: syncing === null ? null : async (resource, globalId, tenant) => { await syncing.api.attach(resource, globalId, tenant) }
    })
  })

  // 7. Changes through the ORM empty the cache, and the cluster rule is kept.
  orm.em.getEventManager().registerSubscriber(invalidatingSubscriber(forget, invalidate))
  orm.em.getEventManager().registerSubscriber(clusterObserver())

  const api: TenancyApi = {
    run: runAsTenant,
    current: () => context.current(),
    scope: () => context.scope(),
    em: () => {
      const scope = context.scope()
      if (scope === null) throw new NoTenantContextError('app.tenancy.em()')
      return scope.em
    },
    tenants,
    create: async (input) => await lifecycle.create(input),
    provision: async (tenant) => await lifecycle.provision(tenant),
    update: async (tenant, changes) => await updates.update(tenant, changes),
    suspend: async (tenant) => await statuses.suspend(tenant),
    activate: async (tenant) => await statuses.activate(tenant),
    delete: async (tenant) => { await lifecycle.delete(tenant) },
    domains,
    migrate: async (options = {}) => await fanOut('migrate', options),
    rollback: async (options = {}) => await fanOut('rollback', options),
    seed: async (options = {}) => await fanOut('seed', options),
    migrationStatus,
    migrationStates: migrationStatesOf,
    rollouts: {
      start: async (input, runOptions) => await rollouts.start(input, runOptions),
      run: async (id, runOptions) => await rollouts.run(id, runOptions),
      resume: async (id, runOptions) => await rollouts.resume(id, runOptions),
      halt: async (id, reason) => await rollouts.halt(id, reason),
      list: async (page) => await rollouts.list(page),
      get: async (id) => await rollouts.get(id)
    },
    verifySchema: async (tenant) => await verifier.verify(tenant, await migrationStatus(tenant)),
    events,
    jobs,
    clusters,
    sync: syncing?.api ?? null,
    invalidate,
    stats: () => ({ ...connections.stats(), tenants: requestStats.snapshot() }),
    orm,
    maintenance: async (tenant, settings = {}) => await maintenance.begin(tenant, settings),
    endMaintenance: async (tenant) => { await maintenance.end(tenant) },
    maintenanceOf: (tenant) => maintenance.of(tenant),
    formerNames: async (tenant) => await formerNames.of(tenant.key),
    impersonation,
    move: async (tenant, moveOptions) => await mover.move(tenant, moveOptions),
    isolate: async (tenant, isolateOptions) => await mover.isolate(tenant, isolateOptions),
    consolidate: async (tenant, consolidateOptions) => await mover.consolidate(tenant, consolidateOptions),
    moves: {
      abort: async (tenant) => await mover.abort(tenant),
      status: async (tenant) => await mover.status(tenant),
      history: async (tenant) => await mover.history(tenant),
      sweep: async () => await mover.sweep()
    },
    bundles: {
      export: async (tenant, out) => await bundles.export(tenant, out),
      import: async (input, importOptions) => await bundles.import(input, importOptions),
      restore: async (input, importOptions) => await bundles.restore(input, importOptions),
      compare: async (a, b) => await bundles.compare(a, b)
    },
    swap: async (tenant, copy) => await swaps.swap(tenant, copy),
    rebalance: {
      plan: async (by) => await rebalancer.plan(by),
      apply: async (plan, onMove) => await rebalancer.apply(plan, onMove)
    }
  }

  const runtime: TenancyRuntime = {
    api,
    identification,
    scopes,
    context,
    options,
    connections,
    renames,
    maintenance,
    impersonation,
    requestStats,
    listener,
    hold,
    migrationGate: gate,
    knownMigrations: async () => await migrator.names(),
    schemaGone: async (tenant, em) => {
      const schema = strategy.kind === 'schema' ? targetOf(tenant).schema : null
      if (schema === null) return false
      const [row] = await em.getConnection().execute<Array<{ gone: boolean }>>('select to_regnamespace(?) is null as gone', [quoteIdent(schema)])
      return row?.gone === true
    },
    async start () {
      // An unmigrated central database is reported at its root (tenants is
      // missing: run central:migrate), before any other part reads its tables.
      const found = await centralSql(orm)('select to_regclass(?) is not null as migrated', [`${tables.schema}.tenants`])
      if (found[0]?.migrated !== true) throw new CentralNotMigratedError(tables.schema)
      // Fail-closed: no tenant table without its policy, no app role that could see past them.
      const sharedSecret = shared === null ? null : await assertRlsReady(shared)
      // Budgets worked out from the servers, poolers checked, and the proofs' secret and clock.
      await pools.start(sharedSecret)
      await formerNames.configure()
      // Listening before the first reads, so no change falls between them.
      await listener?.start()
      await maintenance.start()
      await syncing?.start()
      // Sources of finished moves whose keeping time is over are dropped (one query when there are none).
      await mover.sweep().catch((error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not drop the kept sources of moved tenants') })
    },
    idle: async () => { await strategy.idle() },
    listenerPid: () => listener?.pid() ?? null,
    async close () {
      await syncing?.close()
      await jobs.close()
      await queue.stop()
      await strategy.close()
      await maintenance.close()
      await listener?.stop()
      await connections.close()
      await lockPools.close()
      await migrator.close()
    }
  }
  runtimes.set(api, runtime)
  return runtime
}
