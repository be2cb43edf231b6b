import type { FastifyBaseLogger } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { ResolvedOptions } from './options/index.js'
import type { TenancyApi } from './tenancy-api.js'
import type { Tenant } from './tenant.js'
import { MisconfigurationError, NoTenantContextError } from './errors.js'
import { TenantContext } from './context/tenant-context.js'
import { TenantScopes } from './context/tenant-scopes.js'
import { TenancyEvents } from './lifecycle/events.js'
import { makeProvider } from './providers/make-provider.js'
import { CachedTenantProvider } from './providers/cached-provider.js'
import { tenantDirectory } from './providers/tenant-directory.js'
import { invalidatingSubscriber } from './providers/invalidating-subscriber.js'
import { listenForTenantChanges, type ChangeListener, type TenantChange } from './providers/invalidation.js'
import { LockPools, tenantLocker } from './database/advisory-locks.js'
import { buildResolvers } from './identification/resolvers.js'
import { TenantIdentification } from './identification/tenant-identification.js'
import { TenantConnections } from './database/tenant-connections.js'
import { speedUpScram } from './database/scram-keys.js'
import { databaseStrategy, schemaStrategy } from './database/strategy.js'
import { TenantTargets } from './database/tenant-targets.js'
import { assertSafeName } from './database/names.js'
import { tenantMigrationStatus } from './database/tenant-database.js'
import { sharedStrategy, SHARED_POOL_ID } from './database/shared/shared-strategy.js'
import { sharedTenantEntities } from './database/shared/tenant-entities.js'
import { tenantKeyDriver } from './database/shared/tenant-key-driver.js'
import { assertRlsReady } from './database/shared/rls-guard.js'
import { sharedMigrationStatus } from './database/shared/shared-schema.js'
import type { TenantTarget } from './database/tenant-target.js'
import { databaseBootstrapper } from './bootstrappers/database.js'
import { loggerBootstrapper } from './bootstrappers/logger.js'
import { storageBootstrapper } from './bootstrappers/storage.js'
import { cacheBootstrapper } from './bootstrappers/cache.js'
import { TenantLifecycle } from './lifecycle/tenants.js'
import { TenantMigrations, type FanOutOptions, type TenantResult } from './lifecycle/tenant-migrations.js'
import { MigrationStates, type MigrationState } from './lifecycle/migration-states.js'
import { tenantMigrations } from '../migrations/tenant/index.js'
import { QueueService } from './jobs/queue-service.js'
import { TenantJobs } from './jobs/tenant-jobs.js'
import { TenantClusters } from './clusters/tenant-clusters.js'
import { clusterObserver } from './clusters/observer.js'
import { SyncManager } from './sync/sync-manager.js'
import { sharedAsTenant } from './sync/shared-tenant.js'
import { moveTenant } from './clusters/rules.js'
import { TenantUpdates } from './lifecycle/tenant-updates.js'
import { TenantStatusChanges } from './lifecycle/tenant-status.js'
import { TenantDomains } from './lifecycle/tenant-domains.js'
import { TenantListings } from './lifecycle/tenant-listings.js'
import { FormerNames } from './renames/former-names.js'
import { RenameRedirects } from './renames/redirect.js'
import { MaintenanceMode } from './maintenance/maintenance-mode.js'
import { Impersonation } from './impersonation/impersonation.js'
import { RequestStats } from './telemetry/request-stats.js'

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
  /** The backend process id of the tenant change listener's connection (null when not listening), for operators and tests. */
  listenerPid: () => number | null
}

const runtimes = new WeakMap<TenancyApi, TenancyRuntime>()

/** @internal The runtime behind an `app.tenancy`, for the plugin and the test suite. */
export function tenancyRuntime (api: TenancyApi): TenancyRuntime {
  const runtime = runtimes.get(api)
  if (runtime === undefined) throw new MisconfigurationError('This object is not an app.tenancy made by fastify-tenancy.')
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

  // 1. Where tenants' tables live.
  const strategyOptions = {
    prefix: db.prefix,
    suffix: db.suffix,
    template: options.provisioning.template ? assertSafeName(`${db.prefix}template`) : null,
    spares: options.provisioning.spares,
    onError: (error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not clone a spare tenant database') }
  }
  const shared = options.shared
  const strategy = shared !== null ? sharedStrategy(shared) : options.strategy === 'schema' ? schemaStrategy(strategyOptions) : databaseStrategy(strategyOptions)
  const targets = new TenantTargets({ hosts: db.hosts, defaultHost: db.defaultHost, prefix: db.prefix, suffix: db.suffix }, strategy)
  const targetOf = targets.of.bind(targets)
  // Strategy `shared`: statements name the tenant of the running context (database/shared/tenant-key-driver.ts),
  // signed with the shared database's secret, read at start.
  const keyOf = (): string | null => context.current()?.key ?? null
  let sharedSecret = ''
  // Warm connections for the per-tenant lifecycle locks (closed with the runtime).
  const lockPools = new LockPools()
  // A cold tenant's new connection logs in without deriving the SCRAM key again (database/scram-keys.ts).
  speedUpScram()
  const connections = new TenantConnections({
    entities: shared === null ? options.tenantEntities : sharedTenantEntities(options.tenantEntities, keyOf),
    cap: db.poolCap,
    poolSize: shared === null ? db.poolSize : shared.poolSize,
    maxConnections: db.maxConnections,
    acquireTimeoutMs: db.acquireTimeoutMs,
    idleTimeoutMs: db.idleTimeoutMs,
    debug: db.debug,
    ...(shared === null
      ? {}
      : {
          driver: tenantKeyDriver({ keyOf, schema: shared.schema, secret: () => sharedSecret }),
          // No search_path startup option (PgBouncer refuses it): each statement sets its own.
          ormOptions: (target: TenantTarget) => ({ clientUrl: target.url, schema: shared.schema }),
          pinned: [SHARED_POOL_ID]
        })
  })

  // 2. Finding tenants: provider, its cache, and the resolvers in front.
  const provider = makeProvider(options.provider, options.providerDrivers, orm)
  const resolvers = buildResolvers(options)
  if (resolvers.some((r) => r.name === 'domain') && provider.byDomain === undefined) {
    throw new MisconfigurationError(`The domain resolver needs a provider that can look tenants up by domain; provider "${provider.name}" cannot.`)
  }
  const cache = options.cache === false ? null : new CachedTenantProvider(provider, options.cache)
  const lookups = cache ?? provider
  const execute = async (sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>> =>
    await orm.em.getConnection().execute(sql, params as any[], 'all')
  // Former names (renames): looked up when a name is unknown, forgotten with the cached tenants.
  const formerNames = new FormerNames({ execute, now: options.clock, keepMs: options.renames.keepMs })
  const renames = new RenameRedirects({ formerNames, tenants: lookups, execute, centralDomains: options.centralDomains })
  const invalidate = (): void => { cache?.invalidate(); formerNames.invalidate() }
  // What one change touched, and nothing else (a change to one tenant keeps the others cached).
  const forget = (change: TenantChange): void => { cache?.forget(change); formerNames.forget(change) }
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
    lock: tenantLocker(db.url, lockPools),
    log,
    settings: { centralDomains: options.centralDomains, hosts: db.hosts, defaultHost: db.defaultHost, ...options.provisioning }
  })
  const updates = new TenantUpdates(orm, events, forget, moveTenant, options.centralDomains)
  const statuses = new TenantStatusChanges(orm, events, forget)
  const domains = new TenantDomains(orm, events, forget, options.centralDomains)
  const tenants = tenantDirectory(lookups, lifecycle, new TenantListings(orm), targets)
  const migrations = new TenantMigrations(lifecycle, targetOf, runAsTenant, options.provisioning.seeder, shared)
  // What each tenant database has run, as last seen: screens over the fleet read it instead of every database.
  const migrationStates = new MigrationStates(execute, tenantMigrations.map((m) => m.name))
  events.on('tenant.migrated', async ({ tenant }) => {
    await migrationStates.record(tenant.key, { executed: tenantMigrations.map((m) => m.name) }).catch((error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not record a tenant\'s migration state') })
  })
  const migrationStatus = async (tenant: Tenant): Promise<{ executed: string[], pending: string[] }> => {
    if (shared !== null) return await sharedMigrationStatus(shared)
    const since = Date.now()
    let status: { executed: string[], pending: string[] }
    try {
      status = await tenantMigrationStatus(targetOf(tenant))
    } catch (error) {
      await migrationStates.record(tenant.key, { error: (error as Error).message }, since).catch(() => {})
      throw error
    }
    await migrationStates.record(tenant.key, { executed: status.executed }, since).catch(() => {})
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
  const migrationStatesOf = async (keys: readonly string[]): Promise<Map<string, MigrationState>> => {
    if (shared === null) return await migrationStates.of(keys)
    // Strategy `shared`: one set of shared tables, so one state for every tenant.
    const status = await sharedMigrationStatus(shared)
    const state: MigrationState = { executed: status.executed, pending: status.pending, error: null, checkedAt: new Date() }
    return new Map(keys.map((key) => [key, state]))
  }
  const queue = new QueueService(db.url, options.queueSchema, (error) => { log.warn({ err: error }, 'fastify-tenancy: job queue error') }, options.queueMaintenanceSeconds)
  const find = async (key: string): Promise<Tenant | null> => await lifecycle.find(key)
  const jobs = new TenantJobs({ queue, context, find, runAsTenant, log })
  const clusters = new TenantClusters({ orm, events, find, invalidate })
  const sync = options.sync === null
    ? null
    : new SyncManager({
      orm, connections, queue, byKey: lookups.byKey.bind(lookups), select: async () => await lifecycle.select(), targetOf, scope: () => context.scope(), log, emit: async (event) => { await events.emit(event) },
      // Strategy `shared`: copies and outboxes are the tenant's rows of the shared tables, reached as that tenant.
      ...(shared === null ? {} : { asTenant: sharedAsTenant(lookups.byKey.bind(lookups), runAsTenant) })
    }, {
      ...options.sync,
      // A fan-out never takes more than half of a host's connection budget: requests keep the rest.
      concurrency: Math.min(options.sync.concurrency ?? 16, Math.max(1, Math.floor(db.maxConnections / 2)))
    })
  // A deleted tenant leaves no row in any synced resource's mapping.
  if (sync !== null) events.on('tenant.deleted', async (event) => { await sync.forgetTenant(event.tenant.key) })

  // 5. Tenant operations: maintenance mode, impersonation links, request figures.
  const maintenance = new MaintenanceMode({
    execute,
    url: db.url,
    now: options.clock,
    listen: options.cache === false || options.cache.listen,
    onError: (error) => { log.warn({ err: error }, 'fastify-tenancy: maintenance mode could not follow changes; retrying') }
  })
  const impersonation = new Impersonation({ execute, now: options.clock })
  const requestStats = new RequestStats()

  // 6. Changes through the ORM empty the cache, and the cluster rule is kept.
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
    events,
    jobs,
    clusters,
    sync,
    invalidate,
    stats: () => ({ ...connections.stats(), tenants: requestStats.snapshot() }),
    orm,
    maintenance: async (tenant, settings = {}) => await maintenance.begin(tenant, settings),
    endMaintenance: async (tenant) => { await maintenance.end(tenant) },
    maintenanceOf: (tenant) => maintenance.of(tenant),
    formerNames: async (tenant) => await formerNames.of(tenant.key),
    impersonation
  }

  let listener: ChangeListener | null = null
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
    async start () {
      // An unmigrated central database is reported at its root (tenants is
      // missing: run central:migrate), before any other part reads its tables.
      await orm.em.getConnection().execute('select 1 from tenants limit 0')
      // Fail-closed: no tenant table without its policy, no app role that could see past them.
      if (shared !== null) sharedSecret = await assertRlsReady(shared)
      await formerNames.configure()
      await maintenance.start()
      await sync?.start()
      if (cache === null || options.cache === false || !options.cache.listen) return
      const cached = cache
      listener = listenForTenantChanges({
        url: db.directUrl ?? db.url,
        heartbeatMs: options.cache.heartbeatMs,
        onChange: (change) => { if (change === null) invalidate(); else forget(change) },
        onListening: (listening) => { cached.setListening(listening); formerNames.invalidate() },
        onError: (error) => { log.warn({ err: error }, 'fastify-tenancy: lost the tenant change listener; reconnecting') }
      })
      await listener.ready
    },
    idle: async () => { await strategy.idle() },
    listenerPid: () => listener?.pid() ?? null,
    async close () {
      await sync?.close()
      await jobs.close()
      await queue.stop()
      await strategy.close()
      await listener?.close()
      await maintenance.close()
      await connections.close()
      await lockPools.close()
    }
  }
  runtimes.set(api, runtime)
  return runtime
}
