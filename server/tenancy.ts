import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql'
import type { EventSubscriber } from '@mikro-orm/core'
import type { ResolvedOptions, ResolverName } from './options.js'
import type { Tenant } from './tenant.js'
import type { Identity, IdentityResolver, ResolverContext } from './identification/resolver.js'
import type { TenantProvider } from './providers/provider.js'
import type { Bootstrapper } from './bootstrappers/bootstrapper.js'
import { MisconfigurationError, NoTenantContextError, TenantInactiveError, TenantSuspendedError, UnknownTenantError } from './errors.js'
import { domainResolver } from './identification/domain.js'
import { subdomainResolver } from './identification/subdomain.js'
import { headerResolver } from './identification/header.js'
import { cookieResolver } from './identification/cookie.js'
import { pathResolver } from './identification/path.js'
import { parseHost } from './identification/host.js'
import { checkedIdentifier } from './identification/identifier-value.js'
import { ormProvider } from './providers/orm-provider.js'
import { databaseProvider } from './providers/database-provider.js'
import { CachedTenantProvider } from './providers/cached-provider.js'
import { listenForTenantChanges, type ChangeListener } from './providers/invalidation.js'
import { TenantContext } from './context/tenant-context.js'
import { TenantScope } from './context/tenant-scope.js'
import { TenantConnections, type ConnectionStats } from './database/tenant-connections.js'
import { tenantDatabaseName } from './database/names.js'
import { databaseStrategy, schemaStrategy, type DatabaseStrategy } from './database/strategy.js'
import type { TenantTarget } from './database/tenant-target.js'
import { tenantMigrationStatus } from './database/tenant-database.js'
import { TenancyEvents } from './lifecycle/events.js'
import { SyncManager } from './sync/sync-manager.js'
import { QueueService } from './jobs/queue-service.js'
import { TenantJobs } from './jobs/tenant-jobs.js'
import { TenantClusters } from './clusters/tenant-clusters.js'
import { clusterObserver } from './clusters/observer.js'
import { TenantMigrations, type FanOutOptions, type TenantResult } from './lifecycle/tenant-migrations.js'
import { databaseBootstrapper } from './bootstrappers/database.js'
import { loggerBootstrapper } from './bootstrappers/logger.js'
import { storageBootstrapper } from './bootstrappers/storage.js'
import { cacheBootstrapper } from './bootstrappers/cache.js'
import { DomainEntity } from './entities/central/domain.entity.js'
import { TenantEntity } from './entities/central/tenant.entity.js'
import { TenantLifecycle } from './lifecycle/tenants.js'
import type { CreateTenantInput } from './lifecycle/tenant-input.js'
import { assertSafeName } from './database/names.js'

type Lookup = 'byIdentifier' | 'byDomain'

/** Holds an app's own resolver to the same rules as the shipped ones: what it finds must be well-formed. */
function checkedResolver (resolver: IdentityResolver): IdentityResolver {
  return {
    name: resolver.name,
    resolve (request, context) {
      const identity = resolver.resolve(request, context)
      if (identity === null || identity === undefined) return null
      if (identity.by === 'domain') parseHost(identity.value)
      else checkedIdentifier(identity.value, `${resolver.name} resolver`)
      return identity
    }
  }
}

/**
 * The tenancy runtime behind `app.tenancy`: identification, providers and
 * their cache, the tenant context, bootstrappers and tenant connections.
 * One per registered plugin; nothing in it is process-wide.
 */
export class Tenancy {
  /** The central MikroORM instance. */
  readonly orm: MikroORM
  /** The tenant provider (behind its cache when the cache is on). */
  readonly tenants: TenantProvider
  readonly connections: TenantConnections
  readonly context = new TenantContext()
  readonly options: ResolvedOptions
  private readonly resolvers: IdentityResolver[]
  private readonly resolverContext: ResolverContext
  private readonly bootstrappers: Bootstrapper[]
  private readonly cache: CachedTenantProvider | null
  /** The app's logger. */
  readonly log: FastifyBaseLogger
  /** How tenants' tables are kept apart (a database each, or a schema each). */
  readonly strategy: DatabaseStrategy
  /** Lifecycle events: `app.tenancy.events.on('tenant.created', fn)`. */
  readonly events = new TenancyEvents()
  private listener: ChangeListener | null = null
  private readonly lifecycle: TenantLifecycle
  /** The job queue (pg-boss on the central database), started when first needed. */
  readonly queue: QueueService
  /** Tenant-aware jobs: `define(name, handler)` and `send(name, data)`; a job runs in the tenant context it was sent from. */
  readonly jobs: TenantJobs
  /** Tenant clusters: groups of tenants with a Parent Tenant. */
  readonly clusters: TenantClusters
  /** Resource syncing (`attach`, `detach`, `resync`, `recover`), or null when `sync` is not configured. */
  readonly sync: SyncManager | null
  private readonly migrations: TenantMigrations

  constructor (options: ResolvedOptions, orm: MikroORM, log: FastifyBaseLogger) {
    this.options = options
    this.orm = orm
    this.log = log
    this.resolvers = options.identification.map((r) => typeof r === 'string' ? this.builtinResolver(r) : checkedResolver(r))
    this.resolverContext = { centralDomains: options.centralDomains }
    const provider = this.makeProvider()
    if (this.resolvers.some((r) => r.name === 'domain') && provider.byDomain === undefined) {
      throw new MisconfigurationError(`The domain resolver needs a provider that can look tenants up by domain; provider "${provider.name}" cannot.`)
    }
    this.cache = options.cache === false ? null : new CachedTenantProvider(provider, options.cache)
    this.tenants = this.cache ?? provider
    this.connections = new TenantConnections({
      entities: options.tenantEntities,
      cap: options.database.poolCap,
      poolSize: options.database.poolSize,
      maxConnections: options.database.maxConnections,
      acquireTimeoutMs: options.database.acquireTimeoutMs,
      idleTimeoutMs: options.database.idleTimeoutMs,
      debug: options.database.debug
    })
    const strategyOptions = {
      prefix: options.database.prefix,
      suffix: options.database.suffix,
      template: options.provisioning.template ? assertSafeName(`${options.database.prefix}template`) : null,
      spares: options.provisioning.spares,
      onError: (error: Error) => { log.warn({ err: error }, 'fastify-tenancy: could not clone a spare tenant database') }
    }
    this.strategy = options.strategy === 'schema' ? schemaStrategy(strategyOptions) : databaseStrategy(strategyOptions)
    this.bootstrappers = [
      databaseBootstrapper(this.connections, (tenant) => this.target(tenant)),
      loggerBootstrapper(),
      storageBootstrapper(options.storageRoot),
      cacheBootstrapper(options.cachePrefix),
      ...options.bootstrappers
    ]
    this.orm.em.getEventManager().registerSubscriber(this.invalidatingSubscriber())
    this.lifecycle = new TenantLifecycle(this, this.events)
    this.migrations = new TenantMigrations(this, this.lifecycle)
    this.queue = new QueueService(options.database.url, options.queueSchema, (error) => { log.warn({ err: error }, 'fastify-tenancy: job queue error') }, options.queueMaintenanceSeconds)
    this.jobs = new TenantJobs(this)
    this.clusters = new TenantClusters(this)
    this.orm.em.getEventManager().registerSubscriber(clusterObserver())
    this.sync = options.sync === null ? null : new SyncManager(this, options.sync)
  }

  /**
   * Creates a tenant with its own database at the newest tenant migration; it
   * is active when this resolves. Give `key` and `adopt: true` to take over a
   * database that exists already.
   */
  async create (input: CreateTenantInput & { key?: string, adopt?: boolean }): Promise<Tenant> {
    return await this.lifecycle.create(input)
  }

  /** Runs provisioning again for a tenant (after a failure). */
  async provision (tenant: Pick<Tenant, 'key'>): Promise<Tenant> {
    return await this.lifecycle.provision(tenant)
  }

  /** A tenant by identifier or key, read from the central database (not the cache). */
  async find (identifierOrKey: string): Promise<Tenant | null> {
    return await this.lifecycle.find(identifierOrKey)
  }

  /** Tenants by identifiers or keys (all when none), minus `skip`; unknown names throw FST_TENANCY_TENANT_NOT_FOUND. */
  async select (names?: readonly string[], skip?: readonly string[]): Promise<Tenant[]> {
    return await this.lifecycle.select(names, skip)
  }

  /** Migrates tenant databases to the newest migration, `concurrency` at a time; one failure does not stop the others. */
  async migrate (options: FanOutOptions = {}): Promise<TenantResult[]> {
    return await this.migrations.run('migrate', options)
  }

  /** Rolls tenant databases back by one migration. */
  async rollback (options: FanOutOptions = {}): Promise<TenantResult[]> {
    return await this.migrations.run('rollback', options)
  }

  /** Runs the provisioning seeder in each tenant's context. */
  async seed (options: FanOutOptions = {}): Promise<TenantResult[]> {
    return await this.migrations.run('seed', options)
  }

  /** Which tenant migrations a tenant's database has run, and which it has not. */
  async migrationStatus (tenant: Tenant): Promise<{ executed: string[], pending: string[] }> {
    return await tenantMigrationStatus(this.target(tenant))
  }

  /** Where a tenant's tables live (database or schema, on which host). */
  target (tenant: Pick<Tenant, 'key' | 'databaseHost'>): TenantTarget {
    const hostName = tenant.databaseHost ?? this.options.database.defaultHost
    const host = this.options.database.hosts[hostName]
    if (host === undefined) throw new MisconfigurationError(`Tenant ${tenant.key} lives on database host "${hostName}", which is not in the database.hosts option.`)
    return this.strategy.target(tenant.key, hostName, host)
  }

  /** Deletes a tenant, its database, domains and pivot rows. Running it twice is harmless. */
  async delete (tenant: Pick<Tenant, 'key' | 'databaseHost'>): Promise<void> {
    await this.lifecycle.delete(tenant)
  }


  /** Starts following tenant changes made elsewhere (LISTEN/NOTIFY). */
  async start (): Promise<void> {
    await this.sync?.start()
    if (this.cache === null || this.options.cache === false || !this.options.cache.listen) return
    this.listener = listenForTenantChanges(this.options.database.directUrl ?? this.options.database.url, () => this.invalidate(), (error) => {
      this.log.warn({ err: error }, 'fastify-tenancy: lost the tenant change listener; reconnecting')
    })
    await this.listener.ready
  }

  /** Waits for background work (spare databases being cloned) to finish. */
  async idle (): Promise<void> {
    await this.strategy.idle()
  }

  async close (): Promise<void> {
    await this.sync?.close()
    await this.jobs.close()
    await this.queue.stop()
    await this.strategy.close()
    await this.listener?.close()
    await this.connections.close()
  }

  /** Open tenant pools, and per database host the connections open, the budget, requests waiting and the peak. */
  stats (): ConnectionStats {
    return this.connections.stats()
  }

  /** Forgets every cached tenant (done for you when tenants or domains change). */
  invalidate (): void {
    this.cache?.invalidate()
  }

  /** The tenant of the running code, or null in a central context. */
  current (): Tenant | null {
    return this.context.current()
  }

  /** The scope (tenant, logger, storage, cache prefix, EntityManager) of the running code. */
  scope (): TenantScope | null {
    return this.context.scope()
  }

  /** The current tenant's EntityManager; throws FST_TENANCY_NO_TENANT_CONTEXT in a central context. */
  em (): EntityManager {
    const scope = this.context.scope()
    if (scope === null) throw new NoTenantContextError('app.tenancy.em()')
    return scope.em
  }

  /**
   * Runs `fn` as tenant `tenant`: its EntityManager, logger, storage and cache
   * prefix. Nests; the previous tenant (or none) is back when `fn` settles, and
   * everything bootstrapped for `fn` is reverted.
   */
  async run<R>(tenant: Tenant, fn: (scope: TenantScope) => R | Promise<R>): Promise<R> {
    const scope = this.openScope(tenant, this.log)
    try {
      return await this.context.run(scope, async () => await fn(scope))
    } finally {
      this.closeScope(scope)
    }
  }

  /** The connection URL of the database holding a tenant's tables. */
  databaseUrl (tenant: Pick<Tenant, 'key' | 'databaseHost'>): string {
    return this.target(tenant).url
  }

  /** A tenant's database name (from its key, never its identifier). */
  databaseName (tenant: Pick<Tenant, 'key'>): string {
    return tenantDatabaseName(tenant.key, this.options.database.prefix, this.options.database.suffix)
  }

  /** @internal Opens a scope and runs every bootstrapper on it. */
  openScope (tenant: Tenant, log: FastifyBaseLogger): TenantScope {
    const scope = new TenantScope(tenant, log)
    let done = 0
    try {
      for (const b of this.bootstrappers) { b.bootstrap(scope); done++ }
    } catch (error) {
      // Symmetry: undo what was bootstrapped before the failure.
      for (let i = done - 1; i >= 0; i--) this.bootstrappers[i]?.revert(scope)
      throw error
    }
    return scope
  }

  /** @internal Reverts every bootstrapper, last first. */
  closeScope (scope: TenantScope): void {
    for (let i = this.bootstrappers.length - 1; i >= 0; i--) {
      try {
        this.bootstrappers[i]?.revert(scope)
      } catch (error) {
        this.log.error({ err: error }, `fastify-tenancy: bootstrapper ${this.bootstrappers[i]?.name ?? '?'} failed to revert`)
      }
    }
  }

  /**
   * Finds the tenant a request names. Resolvers are tried in order; the first
   * identity that names a known tenant wins. Returns null when no resolver
   * finds an identity; throws FST_TENANCY_UNKNOWN_TENANT when identities were
   * found but none is a tenant. Answers from the cache without a promise.
   */
  identify (request: FastifyRequest): Tenant | null | Promise<Tenant | null> {
    let first: Identity | null = null
    for (let i = 0; i < this.resolvers.length; i++) {
      const identity = (this.resolvers[i] as IdentityResolver).resolve(request, this.resolverContext)
      if (identity === null) continue
      first ??= identity
      const lookup: Lookup = identity.by === 'domain' ? 'byDomain' : 'byIdentifier'
      const cached = this.cache?.peek(lookup, identity.value)
      if (cached === undefined) return this.identifyFrom(request, i, identity, first)
      if (cached !== null) return cached
    }
    if (first !== null) throw new UnknownTenantError(first.value)
    return null
  }

  private async identifyFrom (request: FastifyRequest, index: number, identity: Identity, first: Identity): Promise<Tenant | null> {
    let current: Identity | null = identity
    for (let i = index; i < this.resolvers.length; i++) {
      if (i > index) current = (this.resolvers[i] as IdentityResolver).resolve(request, this.resolverContext)
      if (current === null) continue
      const tenant = current.by === 'domain'
        ? await (this.tenants.byDomain as (d: string) => Promise<Tenant | null>)(current.value)
        : await this.tenants.byIdentifier(current.value)
      if (tenant !== null) return tenant
    }
    throw new UnknownTenantError(first.value)
  }

  /** Throws unless the tenant may serve requests. */
  assertServes (tenant: Tenant): void {
    if (tenant.status === 'active') return
    if (tenant.status === 'suspended') throw new TenantSuspendedError(tenant.identifier)
    throw new TenantInactiveError(tenant.identifier, tenant.status)
  }

  private builtinResolver (name: ResolverName): IdentityResolver {
    switch (name) {
      case 'domain': return domainResolver()
      case 'subdomain': return subdomainResolver()
      case 'header': return headerResolver(this.options.header)
      case 'cookie': return cookieResolver(this.options.cookie)
      case 'path': return pathResolver(this.options.pathParameter)
    }
  }

  private makeProvider (): TenantProvider {
    const config = this.options.provider
    const execute = async (sql: string, params: unknown[]): Promise<Array<Record<string, unknown>>> =>
      await this.orm.em.getConnection().execute(sql, params as any[], 'all')
    if (config.driver === 'orm') return ormProvider({ orm: this.orm, entity: (config as { entity?: any }).entity })
    if (config.driver === 'database') {
      const c = config as { table?: string, domainsTable?: string | null, resourceKeyColumn?: string | null }
      return databaseProvider({ execute, table: c.table, domainsTable: c.domainsTable, resourceKeyColumn: c.resourceKeyColumn })
    }
    const driver = this.options.providerDrivers[config.driver] as NonNullable<ResolvedOptions['providerDrivers'][string]>
    const provider = driver(config as Record<string, unknown>, { orm: this.orm, execute })
    for (const method of ['byIdentifier', 'byKey', 'byResourceKey'] as const) {
      if (typeof provider?.[method] !== 'function') throw new MisconfigurationError(`Provider driver "${config.driver}" returned a provider without ${method}().`)
    }
    return provider
  }

  /**
   * Drops cached tenants as soon as this instance flushes a change to tenants
   * or domains through the ORM. Inside a longer transaction that is before the
   * commit; the database trigger's NOTIFY, delivered at commit, drops them again.
   */
  private invalidatingSubscriber (): EventSubscriber {
    const watched = new Set([TenantEntity.meta.className, DomainEntity.meta.className])
    return {
      afterFlush: (args) => {
        if (args.uow.getChangeSets().some((cs) => watched.has(cs.meta.className))) this.invalidate()
      }
    }
  }
}
