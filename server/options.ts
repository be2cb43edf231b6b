import type { EntitySchema } from '@mikro-orm/core'
import { InvalidOptionError } from './errors.js'
import type { Bootstrapper } from './bootstrappers/bootstrapper.js'
import type { IdentityResolver } from './identification/resolver.js'
import type { ProviderDriver } from './providers/provider.js'
import type { TenantCacheOptions } from './providers/cached-provider.js'
import { tenantEntities as shippedTenantEntities } from './entities/tenant/index.js'
import type { TenantScope } from './context/tenant-scope.js'
import type { ProvisioningStep } from './lifecycle/steps.js'
import type { StrategyName } from './database/strategy.js'
import { resolveSharedOptions, type ResolvedSharedOptions, type SharedOptions } from './database/shared/shared-options.js'
import type { SyncOptions } from './sync/options.js'
import { refuseLeakyPooling } from './database/pooler.js'

export type { HostLoad } from './lifecycle/placement.js'
import type { HostLoad } from './lifecycle/placement.js'

export interface ProvisioningOptions {
  /** Clone new tenant databases from a template kept at the newest migration (default true; strategy `database` only). */
  template?: boolean
  /** Databases kept cloned from the template on each host, so a new tenant takes one by renaming it (default 2; 0 turns it off). */
  spares?: number
  /** Fills a new tenant's database; runs inside the tenant's context. */
  seeder?: (scope: TenantScope) => Promise<void>
  /** Change the provisioning steps: gets the shipped ones (create-database, migrate, seed, activate), returns the ones to run. */
  steps?: (defaults: ProvisioningStep[]) => ProvisioningStep[]
  /** Picks the database host of a new tenant (default: the host with the fewest tenants). */
  placement?: (hosts: HostLoad[]) => string | Promise<string>
}

/** Whether a route needs a tenant, must not have one, or takes either. */
export type RouteMode = 'tenant' | 'central' | 'universal'
export const ROUTE_MODES: readonly RouteMode[] = ['tenant', 'central', 'universal']

export type ResolverName = 'domain' | 'subdomain' | 'path' | 'header' | 'cookie'
export const RESOLVER_NAMES: readonly ResolverName[] = ['domain', 'subdomain', 'path', 'header', 'cookie']

/** Which provider loads tenants: the shipped `orm` or `database` drivers, or one registered in `providerDrivers`. */
export type ProviderConfig =
  | { driver: 'orm', entity?: EntitySchema<any, any> }
  | { driver: 'database', table?: string, domainsTable?: string | null, resourceKeyColumn?: string | null }
  | { driver: string, [option: string]: unknown }

/** The pool_mode of a pooler (PgBouncer) in front of the database servers, or `none`. */
export type PoolerMode = 'none' | 'session' | 'transaction'
export const POOLER_MODES: readonly PoolerMode[] = ['none', 'session', 'transaction']

export interface TenancyDatabaseOptions {
  /** URL of the central (landlord) database. */
  url: string
  /** Servers that hold tenant databases, by name: `{ main: 'postgres://…' }`. Default: the central database's server, named `default`. */
  hosts?: Record<string, string>
  /** Host used for tenants that record none (default: the first host). */
  defaultHost?: string
  /** Tenant database names are `prefix + key without dashes + suffix`. */
  prefix?: string
  suffix?: string
  /** Most tenant pools open at once (default 50). */
  poolCap?: number
  /** Most connections in one tenant pool (default 2). */
  poolSize?: number
  /** How long an idle tenant connection stays open, in ms (default 10,000). */
  idleTimeoutMs?: number
  /** Most tenant connections open to one database host at once, every pool counted (default 20). */
  maxConnections?: number
  /** How long a request waits for a tenant connection on a full host before it gets 503 FST_TENANCY_BUSY, in ms (default 5,000). */
  acquireTimeoutMs?: number
  /** The connection pooler in front of these servers: `none` (default), `session` or `transaction` (PgBouncer's pool_mode). */
  pooler?: PoolerMode
  /** The central database's URL past the pooler, for LISTEN (needed with pooler `transaction` while the tenant cache listens). */
  directUrl?: string
  /** Log every SQL statement (MikroORM's `debug`). */
  debug?: boolean
}

export interface TenancyOptions {
  database: TenancyDatabaseOptions
  /** Your app's MikroORM instance for the central database, instead of one made by the plugin (it must include `centralEntities`). */
  orm?: import('@mikro-orm/postgresql').MikroORM
  /** Entities of the tenant databases, for `request.tenantEm` (default: the shipped users and projects). */
  tenantEntities?: EntitySchema<any, any>[]
  /** Your own central entities, next to the shipped ones (the central entity of a synced resource such as companies). */
  centralEntities?: EntitySchema<any, any>[]
  /** Hosts of the central app; they never identify a tenant. Default `['localhost', '127.0.0.1']`. */
  centralDomains?: string[]
  /** Resolvers, tried in order; the first whose identity names a known tenant wins. Default `['subdomain', 'domain']`. */
  identification?: Array<ResolverName | IdentityResolver>
  /** Header read by the header resolver (default `x-tenant`). */
  header?: string
  /** Cookie read by the cookie resolver (default `tenant`). */
  cookie?: string
  /** Route parameter read (and hidden) by the path resolver (default `tenant`). */
  pathParameter?: string
  /** Default `{ driver: 'orm' }`. */
  provider?: ProviderConfig
  /** Your own provider drivers, by name. */
  providerDrivers?: Record<string, ProviderDriver>
  /**
   * The tenant cache; `false` turns it off. `listen` (default true) follows changes made by other instances;
   * `heartbeatMs` (default 10,000) is how often its connection proves it is alive (a missed heartbeat empties the cache and reconnects).
   */
  cache?: (Partial<TenantCacheOptions> & { listen?: boolean, heartbeatMs?: number }) | false
  /** Mode of routes that set no `config.tenancy` (default `tenant`). */
  defaultRouteMode?: RouteMode
  /** Folder under which each tenant gets a folder named by its resource key (default `./storage`). */
  storageRoot?: string
  /** Prefix of tenant cache keys (default `tenant:`). */
  cachePrefix?: string
  /** Your own bootstrappers, run after the shipped ones (database, logger, storage, cache). */
  bootstrappers?: Bootstrapper[]
  /** Run the central migrations when the plugin registers (default false). */
  migrateCentral?: boolean
  /** `database` (default): a PostgreSQL database per tenant. `schema`: a schema per tenant inside the hosts' databases. */
  strategy?: StrategyName
  /** Strategy `shared`: the app role's URL, the central role's URL, the schema (see README, "Choosing a strategy"). */
  shared?: SharedOptions
  provisioning?: ProvisioningOptions
  /** Resource syncing: the synced resources and the mode (see README). Off when not given. */
  sync?: SyncOptions
  /** Schema of the job queue's (pg-boss) tables in the central database (default `fastify_tenancy_queue`). */
  queueSchema?: string
  /** How often the queue's maintenance runs, in seconds (default 60): it hands expired jobs of dead workers back to the queue. */
  queueMaintenanceSeconds?: number
  /** Renames: how long a former identifier or domain redirects to the new one and stays reserved, in ms (default 90 days). */
  renames?: { keepMs?: number }
  /** The clock (ms since the epoch) by which renames, maintenance and impersonation tokens expire; tests move it instead of sleeping. Default `Date.now`. */
  clock?: () => number
  /** Serve impersonation links on tenant hosts (`/_tenancy/impersonate`, default true). */
  impersonation?: boolean
  /**
   * The registration's name (default `tenants`): `app.tenancies.<name>` and
   * `request.tenancies.<name>`. Only `tenants` also gets `app.tenancy`,
   * `request.tenant` and `request.tenantEm`; register the plugin again under
   * another name (`teams`) for a second tenancy beside it.
   */
  name?: string
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  database: Required<Omit<TenancyDatabaseOptions, 'hosts' | 'defaultHost' | 'directUrl'>> & { hosts: Record<string, string>, defaultHost: string, directUrl: string | null }
  tenantEntities: EntitySchema<any, any>[]
  centralEntities: EntitySchema<any, any>[]
  centralDomains: string[]
  identification: Array<ResolverName | IdentityResolver>
  header: string
  cookie: string
  pathParameter: string
  provider: ProviderConfig
  providerDrivers: Record<string, ProviderDriver>
  cache: (TenantCacheOptions & { listen: boolean, heartbeatMs: number }) | false
  defaultRouteMode: RouteMode
  storageRoot: string
  cachePrefix: string
  bootstrappers: Bootstrapper[]
  migrateCentral: boolean
  orm: import('@mikro-orm/postgresql').MikroORM | null
  strategy: StrategyName
  shared: ResolvedSharedOptions | null
  sync: SyncOptions | null
  queueSchema: string
  queueMaintenanceSeconds: number
  renames: { keepMs: number }
  clock: () => number
  impersonation: boolean
  name: string
  provisioning: { template: boolean, spares: number, seeder: ((scope: TenantScope) => Promise<void>) | null, steps: ((defaults: ProvisioningStep[]) => ProvisioningStep[]) | null, placement: ((hosts: HostLoad[]) => string | Promise<string>) | null }
}

const HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/
const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/
const NAME_PART = /^[a-z0-9_]{0,40}$/

function fail (option: string, problem: string): never {
  throw new InvalidOptionError(option, problem)
}

function positiveInt (value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(option, 'must be a whole number of at least 1')
  return value
}

function nonNegativeInt (value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) fail(option, 'must be a whole number from 0 to 100')
  return value
}

function postgresUrl (value: unknown, option: string): string {
  if (typeof value !== 'string') fail(option, 'must be a postgres:// URL')
  let url: URL
  try { url = new URL(value) } catch { fail(option, 'must be a postgres:// URL') }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') fail(option, 'must be a postgres:// URL')
  return value
}

function plainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkSchema (value: unknown, option: string): string {
  if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value)) fail(option, 'must be a lowercase schema name')
  return value
}

function checkCentralEntities (entities: unknown): EntitySchema<any, any>[] {
  if (entities === undefined) return []
  if (!Array.isArray(entities)) fail('centralEntities', 'must be a list of entities')
  return entities as EntitySchema<any, any>[]
}

function checkSync (sync: unknown): SyncOptions | null {
  if (sync === undefined) return null
  if (!plainObject(sync)) fail('sync', 'must be an object with resources')
  const s = sync as unknown as SyncOptions
  if (!Array.isArray(s.resources) || s.resources.length === 0) fail('sync.resources', 'must list at least one synced resource')
  if (s.mode !== undefined && s.mode !== 'inline' && s.mode !== 'queued') fail('sync.mode', 'must be "inline" or "queued"')
  if (s.jobExpireSeconds !== undefined && (!Number.isInteger(s.jobExpireSeconds) || s.jobExpireSeconds < 1)) fail('sync.jobExpireSeconds', 'must be a whole number of seconds, at least 1')
  for (const key of ['concurrency', 'batchSize', 'pollIntervalMs'] as const) {
    if (s[key] !== undefined && (!Number.isInteger(s[key]) || (s[key] as number) < 1)) fail(`sync.${key}`, 'must be a whole number, at least 1')
  }
  if (s.retry !== undefined && (!plainObject(s.retry) || [s.retry.minDelayMs, s.retry.maxDelayMs].some((v) => v !== undefined && (typeof v !== 'number' || v < 0)))) fail('sync.retry', 'must be { minDelayMs, maxDelayMs } in ms')
  for (const r of s.resources) {
    if (!plainObject(r) || typeof r.name !== 'string' || r.central === undefined || r.tenant === undefined || !Array.isArray(r.attributes)) {
      fail('sync.resources', 'has one that is not { name, central, tenant, attributes }')
    }
  }
  return s
}

/** Checks the plugin's options once, at register, and fills in the defaults. */
export function resolveOptions (input: unknown): ResolvedOptions {
  if (!plainObject(input)) fail('options', 'must be an object')
  const o = input as Partial<TenancyOptions>
  if (!plainObject(o.database)) fail('database', 'is required: give at least { url } of the central database')
  const db = o.database
  const url = postgresUrl(db.url, 'database.url')
  let hosts: Record<string, string> = { default: url }
  if (db.hosts !== undefined) {
    if (!plainObject(db.hosts) || Object.keys(db.hosts).length === 0) fail('database.hosts', 'must name at least one server, as { name: url }')
    hosts = {}
    for (const [name, hostUrl] of Object.entries(db.hosts)) {
      if (!/^[a-z0-9_-]{1,63}$/.test(name)) fail(`database.hosts.${name}`, 'must be named with 1 to 63 lowercase letters, digits, dashes or underscores')
      hosts[name] = postgresUrl(hostUrl, `database.hosts.${name}`)
    }
  }
  const defaultHost = db.defaultHost ?? Object.keys(hosts)[0] as string
  if (hosts[defaultHost] === undefined) fail('database.defaultHost', `must be one of database.hosts (${Object.keys(hosts).join(', ')})`)
  const prefix = db.prefix ?? 'tenant_'
  const suffix = db.suffix ?? ''
  if (typeof prefix !== 'string' || !NAME_PART.test(prefix)) fail('database.prefix', 'must be at most 40 lowercase letters, digits or underscores')
  if (typeof suffix !== 'string' || !NAME_PART.test(suffix)) fail('database.suffix', 'must be at most 40 lowercase letters, digits or underscores')
  if (prefix.length + suffix.length + 32 > 63) fail('database.prefix', 'and database.suffix together must leave room for the 32-character key in a 63-character name')

  const centralDomains = o.centralDomains ?? ['localhost', '127.0.0.1']
  if (!Array.isArray(centralDomains) || centralDomains.length === 0) fail('centralDomains', 'must list at least one hostname')
  for (const d of centralDomains) {
    // Punycode and over-long names are refused here as in the Host header (identification/host.ts), or no request could ever reach them.
    if (typeof d !== 'string' || (!HOSTNAME.test(d) && !IPV4.test(d)) || d.length > 253 || /(?:^|\.)xn--/.test(d)) fail('centralDomains', `has "${String(d)}", which is not a lowercase hostname`)
  }

  const providerDrivers = o.providerDrivers ?? {}
  if (!plainObject(providerDrivers)) fail('providerDrivers', 'must be an object of driver functions')
  for (const [name, driver] of Object.entries(providerDrivers)) {
    if (typeof driver !== 'function') fail(`providerDrivers.${name}`, 'must be a function (config, context) => provider')
    if (name === 'orm' || name === 'database') fail(`providerDrivers.${name}`, 'is a shipped driver name; choose another')
  }
  const provider = o.provider ?? { driver: 'orm' }
  if (!plainObject(provider) || typeof provider.driver !== 'string') fail('provider', 'must be { driver: "orm" | "database" | a name from providerDrivers }')
  if (provider.driver !== 'orm' && provider.driver !== 'database' && providerDrivers[provider.driver] === undefined) {
    fail('provider.driver', `is "${provider.driver}", which is neither "orm", "database" nor a name in providerDrivers`)
  }

  const header = o.header ?? 'x-tenant'
  if (typeof header !== 'string' || !TOKEN.test(header)) fail('header', 'must be an HTTP header name')
  const cookie = o.cookie ?? 'tenant'
  if (typeof cookie !== 'string' || !TOKEN.test(cookie)) fail('cookie', 'must be a cookie name')
  const pathParameter = o.pathParameter ?? 'tenant'
  if (typeof pathParameter !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pathParameter)) fail('pathParameter', 'must be a route parameter name')

  const identification = o.identification ?? ['subdomain', 'domain']
  if (!Array.isArray(identification) || identification.length === 0) fail('identification', 'must list at least one resolver')
  for (const r of identification) {
    if (typeof r === 'string') {
      if (!RESOLVER_NAMES.includes(r)) fail('identification', `has "${r}"; use ${RESOLVER_NAMES.join(', ')} or your own { name, resolve }`)
    } else if (!plainObject(r) || typeof r.name !== 'string' || typeof r.resolve !== 'function') {
      fail('identification', 'has a resolver that is not { name: string, resolve(request, context) }')
    }
  }

  let cache: ResolvedOptions['cache'] = false
  if (o.cache !== false) {
    const c = o.cache ?? {}
    if (!plainObject(c)) fail('cache', 'must be an object or false')
    cache = {
      max: positiveInt(c.max, 'cache.max', 10_000),
      ttlMs: positiveInt(c.ttlMs, 'cache.ttlMs', 60_000),
      missTtlMs: positiveInt(c.missTtlMs, 'cache.missTtlMs', 2_000),
      listen: c.listen ?? true,
      heartbeatMs: positiveInt(c.heartbeatMs, 'cache.heartbeatMs', 10_000)
    }
    if (typeof cache.listen !== 'boolean') fail('cache.listen', 'must be true or false')
  }

  const defaultRouteMode = o.defaultRouteMode ?? 'tenant'
  if (!ROUTE_MODES.includes(defaultRouteMode)) fail('defaultRouteMode', `must be one of ${ROUTE_MODES.join(', ')}`)

  const tenantEntities = o.tenantEntities ?? shippedTenantEntities
  if (!Array.isArray(tenantEntities) || tenantEntities.length === 0) fail('tenantEntities', 'must list at least one entity')

  const bootstrappers = o.bootstrappers ?? []
  if (!Array.isArray(bootstrappers)) fail('bootstrappers', 'must be an array')
  for (const b of bootstrappers) {
    if (!plainObject(b) || typeof b.name !== 'string' || typeof b.bootstrap !== 'function' || typeof b.revert !== 'function') {
      fail('bootstrappers', 'has one that is not { name, bootstrap(scope), revert(scope) }')
    }
  }
  const storageRoot = o.storageRoot ?? './storage'
  if (typeof storageRoot !== 'string' || storageRoot.length === 0) fail('storageRoot', 'must be a folder path')
  const cachePrefix = o.cachePrefix ?? 'tenant:'
  if (typeof cachePrefix !== 'string') fail('cachePrefix', 'must be a string')
  if (o.migrateCentral !== undefined && typeof o.migrateCentral !== 'boolean') fail('migrateCentral', 'must be true or false')
  const strategy = o.strategy ?? 'database'
  if (strategy !== 'database' && strategy !== 'schema' && strategy !== 'shared') fail('strategy', 'must be "database", "schema" or "shared"')
  if (strategy !== 'shared' && o.shared !== undefined) fail('shared', 'is only for strategy "shared"')
  const shared = strategy === 'shared' ? resolveSharedOptions(o.shared, url) : null
  // Syncing captures a tenant's changes per pool; strategy shared has one pool for every tenant, so it would
  // credit them to the wrong tenant. Refused until the syncer names the tenant per change.
  if (strategy === 'shared' && o.sync !== undefined) fail('sync', 'is not available with strategy "shared" yet: use strategy "database" or "schema" for synced resources')
  const prov: ProvisioningOptions = o.provisioning ?? {}
  if (!plainObject(prov as unknown)) fail('provisioning', 'must be an object')
  if (prov.template !== undefined && typeof prov.template !== 'boolean') fail('provisioning.template', 'must be true or false')
  for (const fn of ['seeder', 'steps', 'placement'] as const) {
    if (prov[fn] !== undefined && typeof prov[fn] !== 'function') fail(`provisioning.${fn}`, 'must be a function')
  }

  const pooler = db.pooler ?? 'none'
  if (!POOLER_MODES.includes(pooler)) fail('database.pooler', `must be one of ${POOLER_MODES.join(', ')} (PgBouncer's pool_mode; statement mode cannot run transactions)`)
  const directUrl = db.directUrl === undefined ? null : postgresUrl(db.directUrl, 'database.directUrl')
  refuseLeakyPooling({ pooler, urls: [url, ...Object.values(hosts)], listen: cache !== false && cache.listen, directUrl, strategy, tenantEntities })
  const renames = o.renames ?? {}
  if (!plainObject(renames)) fail('renames', 'must be an object such as { keepMs }')
  const keepMs = renames.keepMs ?? 90 * 24 * 60 * 60 * 1000
  if (typeof keepMs !== 'number' || !Number.isInteger(keepMs) || keepMs < 0) fail('renames.keepMs', 'must be a whole number of milliseconds, 0 or more')
  const name = o.name ?? 'tenants'
  if (typeof name !== 'string' || !/^[a-z][a-zA-Z0-9_]{0,39}$/.test(name)) fail('name', 'must be a name of up to 40 letters, digits or underscores, starting with a lowercase letter')
  if (o.impersonation !== undefined && typeof o.impersonation !== 'boolean') fail('impersonation', 'must be true or false')
  if (o.clock !== undefined && typeof o.clock !== 'function') fail('clock', 'must be a function returning milliseconds since the epoch')

  const orm = o.orm ?? null
  if (orm !== null && (typeof orm !== 'object' || typeof (orm as { getMetadata?: unknown }).getMetadata !== 'function' || typeof (orm as { em?: unknown }).em !== 'object')) fail('orm', 'must be a MikroORM instance (the result of MikroORM.init)')
  return {
    renames: { keepMs },
    clock: o.clock ?? Date.now,
    impersonation: o.impersonation ?? true,
    name,
    orm,
    database: {
      url,
      hosts,
      defaultHost,
      prefix,
      suffix,
      poolCap: positiveInt(db.poolCap, 'database.poolCap', 50),
      poolSize: positiveInt(db.poolSize, 'database.poolSize', 2),
      idleTimeoutMs: positiveInt(db.idleTimeoutMs, 'database.idleTimeoutMs', 10_000),
      maxConnections: positiveInt(db.maxConnections, 'database.maxConnections', 20),
      acquireTimeoutMs: positiveInt(db.acquireTimeoutMs, 'database.acquireTimeoutMs', 5_000),
      pooler,
      directUrl,
      debug: db.debug ?? false
    },
    tenantEntities,
    centralEntities: checkCentralEntities(o.centralEntities),
    centralDomains,
    identification,
    header,
    cookie,
    pathParameter,
    provider,
    providerDrivers,
    cache,
    defaultRouteMode,
    storageRoot,
    cachePrefix,
    bootstrappers,
    migrateCentral: o.migrateCentral ?? false,
    strategy,
    shared,
    sync: checkSync(o.sync),
    queueSchema: checkSchema(o.queueSchema ?? 'fastify_tenancy_queue', 'queueSchema'),
    queueMaintenanceSeconds: positiveInt(o.queueMaintenanceSeconds, 'queueMaintenanceSeconds', 60),
    provisioning: { template: prov.template ?? true, spares: prov.spares === undefined ? 2 : nonNegativeInt(prov.spares, 'provisioning.spares'), seeder: prov.seeder ?? null, steps: prov.steps ?? null, placement: prov.placement ?? null }
  }
}
