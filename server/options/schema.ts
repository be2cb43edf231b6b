import { Type, type Static } from '@sinclair/typebox'
import type { EntitySchema } from '@mikro-orm/core'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Bootstrapper } from '../context/bootstrapper.js'
import type { IdentityResolver } from '../identification/resolver.js'
import type { ProviderDriver } from '../providers/provider.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { ProvisioningStep } from '../lifecycle/steps.js'
import type { HostLoad } from '../lifecycle/placement.js'
import type { SyncedResourceDefinition } from '../sync/resource.js'
import type { ResolvedSharedOptions } from '../database/shared/shared-options.js'
import type { TenantMigrationsOptions } from '../database/migration-sets.js'
import { Default, type Resolved } from './defaults.js'
import { Shape } from './shapes.js'

// The plugin's options, as one schema: the validator compiles it, the public
// types are derived from it, and each default sits beside its option. To add
// an option, add one property here (with `Default(...)` when it has one and a
// `problem` sentence saying what it must be); see docs/options.md.
//
// `problem` completes "Option "x" ..." in FST_TENANCY_INVALID_OPTION.

const NAME_PART = '^[a-z0-9_]{0,40}$'
const TOKEN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"

const PositiveInt = (problem = 'must be a whole number of at least 1') => Type.Integer({ minimum: 1, problem })
const Bool = () => Type.Boolean({ problem: 'must be true or false' })
const PostgresUrl = () => Type.String({ format: 'postgres-url', problem: 'must be a postgres:// URL' })
/** A URL of one database: the path names it (postgres://…/app). */
const DatabaseUrl = () => Type.String({ format: 'postgres-database-url', problem: 'must be a postgres:// URL that names its database (postgres://user:password@host:5432/name)' })
const Fn = <T>(problem = 'must be a function') => Shape<T>('function', problem)
const EntitySchemaShape = Shape<EntitySchema<any, any>>('entitySchema', 'must be a MikroORM entity schema (defineEntity or new EntitySchema)')

/** Whether a route needs a tenant, must not have one, or takes either. */
export const ROUTE_MODES = ['tenant', 'central', 'universal'] as const
export type RouteMode = typeof ROUTE_MODES[number]

export const RESOLVER_NAMES = ['domain', 'subdomain', 'path', 'header', 'cookie'] as const
export type ResolverName = typeof RESOLVER_NAMES[number]

export const STRATEGIES = ['database', 'schema', 'shared'] as const

/** The pool_mode of a pooler (PgBouncer) in front of the database servers, or `none`. */
export const POOLER_MODES = ['none', 'session', 'transaction'] as const
export type PoolerMode = typeof POOLER_MODES[number]

const oneOf = <T extends string>(values: readonly T[], problem: string) => Type.Union(values.map((v) => Type.Literal(v)), { problem })

export const DatabaseOptionsSchema = Type.Object({
  /** URL of the central (landlord) database. */
  url: DatabaseUrl(),
  /** The PostgreSQL schema of the central tables in the central database (default `tenancy`), apart from the app's own tables. */
  schema: Default(Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', problem: 'must be a lowercase schema name (letters, digits, underscores)' }), 'tenancy'),
  /** Servers that hold tenant databases, by name: `{ main: 'postgres://…' }`. Default: the central database's server, named `default`. */
  hosts: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z0-9_-]{1,63}$' }), PostgresUrl(), {
    minProperties: 1,
    additionalProperties: false,
    problem: 'must name at least one server, as { name: "postgres://…" }',
    keyProblem: 'must be named with 1 to 63 lowercase letters, digits, dashes or underscores'
  })),
  /** Host used for tenants that record none (default: the first host). */
  defaultHost: Type.Optional(Type.String({ problem: 'must be the name of one of database.hosts' })),
  /** Tenant database names are `prefix + key without dashes + suffix`. */
  prefix: Default(Type.String({ pattern: NAME_PART, problem: 'must be at most 40 lowercase letters, digits or underscores' }), 'tenant_'),
  suffix: Default(Type.String({ pattern: NAME_PART, problem: 'must be at most 40 lowercase letters, digits or underscores' }), ''),
  /** Most tenant pools open at once (default: the sum of the hosts' `maxConnections`, see docs/connections-and-poolers.md, "Connection defaults"). */
  poolCap: Type.Optional(PositiveInt()),
  /** Most connections in one tenant pool (default 2). */
  poolSize: Default(PositiveInt(), 2),
  /** How long an idle tenant connection stays open, in ms (default 10,000). */
  idleTimeoutMs: Default(PositiveInt(), 10_000),
  /**
   * Most tenant connections open to one database host at once, every pool
   * counted. Default: worked out from each server when the plugin starts,
   * (max_connections − superuser_reserved_connections − reserved_connections
   * − this library's own connections on the central database's server) ÷
   * `instances` (docs/connections-and-poolers.md, "Connection defaults").
   */
  maxConnections: Type.Optional(PositiveInt()),
  /** How many instances of the app share the database servers (default 1): the worked-out `maxConnections` is split between them. */
  instances: Default(PositiveInt(), 1),
  /** How long a request waits for a tenant connection on a full host before it gets 503 FST_TENANCY_BUSY, in ms (default 5,000). */
  acquireTimeoutMs: Default(PositiveInt(), 5_000),
  /** The connection pooler in front of these servers: `none` (default), `session` or `transaction` (PgBouncer's pool_mode). */
  pooler: Default(oneOf(POOLER_MODES, `must be one of ${POOLER_MODES.join(', ')} (PgBouncer's pool_mode; statement mode cannot run transactions)`), 'none'),
  /** The central database's URL past the pooler, for the one LISTEN connection (needed with pooler `transaction` while changes are followed). */
  directUrl: Default(DatabaseUrl(), null),
  /** Log every SQL statement (MikroORM's `debug`). */
  debug: Default(Bool(), false)
}, { additionalProperties: false, problem: 'must be an object with at least { url } of the central database' })

const CacheOptionsSchema = Type.Object({
  /** Most entries kept (default 10,000). */
  max: Default(PositiveInt(), 10_000),
  /** How long a found tenant is kept, in ms (default 60,000). */
  ttlMs: Default(PositiveInt(), 60_000),
  /** How long a miss is kept, in ms, so unknown names do not hit the database every time (default 2,000). */
  missTtlMs: Default(PositiveInt(), 2_000),
  /** Follow changes made by other instances: tenants, renames and maintenance (one PostgreSQL LISTEN connection; default true). */
  listen: Default(Bool(), true),
  /** How often the listening connection proves it is alive, in ms (default 10,000): a missed heartbeat empties the cache, reloads maintenance and reconnects. */
  heartbeatMs: Default(PositiveInt(), 10_000)
}, { additionalProperties: false })

export const ProvisioningOptionsSchema = Type.Object({
  /** Clone new tenant databases from a template kept at the newest migration (default true; strategy `database` only). */
  template: Default(Bool(), true),
  /** Databases kept cloned from the template on each host, so a new tenant takes one by renaming it (default 2; 0 turns it off). */
  spares: Default(Type.Integer({ minimum: 0, maximum: 100, problem: 'must be a whole number from 0 to 100' }), 2),
  /** Fills a new tenant's database; runs inside the tenant's context. */
  seeder: Default(Fn<(scope: TenantScope) => Promise<void>>(), null),
  /** Change the provisioning steps: gets the shipped ones (create-database, migrate, seed, activate), returns the ones to run. */
  steps: Default(Fn<(defaults: ProvisioningStep[]) => ProvisioningStep[]>(), null),
  /** Picks the database host of a new tenant (default: the host with the fewest tenants). */
  placement: Default(Fn<(hosts: HostLoad[]) => string | Promise<string>>(), null)
}, { additionalProperties: false, problem: 'must be an object' })

const SyncedResourceSchema = Type.Unsafe<SyncedResourceDefinition>(Type.Object({
  name: Type.String(),
  central: EntitySchemaShape,
  tenant: EntitySchemaShape,
  attributes: Type.Array(Type.String())
}, { problem: 'must be { name, central: entity schema, tenant: entity schema, attributes: string[] }' }))

export const SharedOptionsSchema = Type.Object({
  /**
   * URL the tenant EntityManagers connect with: the database holding the
   * shared tables, as a role that owns no tenant table and has neither
   * BYPASSRLS nor superuser (the plugin refuses to register otherwise).
   */
  url: DatabaseUrl(),
  /**
   * URL of the role that may cross tenants (central and admin work:
   * migrations, policies, deleting a tenant's rows). Default: the central
   * database's URL pointed at the shared tables' database.
   */
  centralUrl: Type.Optional(DatabaseUrl()),
  /** Schema of the shared tenant tables (default `tenant_shared`; the central tables stay apart). */
  schema: Default(Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', problem: 'must be a lowercase schema name' }), 'tenant_shared'),
  /** Most connections of the one shared pool (default 10). */
  poolSize: Default(PositiveInt(), 10),
  /** Rows removed per statement when a tenant is deleted (default 1,000). */
  deleteBatch: Default(PositiveInt(), 1000)
}, { additionalProperties: false, problem: 'must be an object with at least { url } (the app role\'s URL of the shared tables\' database)' })

export const SyncOptionsSchema = Type.Object({
  /** `queued` (default): a worker delivers changes in the background. `inline`: changes reach the other copies before the flush resolves. */
  mode: Default(oneOf(['inline', 'queued'] as const, 'must be "inline" or "queued"'), 'queued'),
  /** Deliver changes in this process: queued ones, and those other instances left behind (default true). */
  worker: Default(Bool(), true),
  /** Seconds a worker may hold a queued change before another worker takes it over (default 5): a worker that died loses its changes after this. */
  jobExpireSeconds: Default(PositiveInt('must be a whole number of seconds, at least 1'), 5),
  /** How long a change committed by one instance is left to it before any running instance delivers it instead (a crash in between), in ms (default 2,000). */
  takeoverMs: Default(PositiveInt('must be a whole number of ms, at least 1'), 2_000),
  /** Most tenant databases written at once by one fan-out or one batch of jobs (default 16, and never more than half of `database.maxConnections`). */
  concurrency: Default(PositiveInt('must be a whole number, at least 1'), 16),
  /** Changes taken at once from the queue (default 100). */
  batchSize: Default(PositiveInt('must be a whole number, at least 1'), 100),
  /** Backoff of changes that could not be delivered (a tenant database down): first wait and longest wait, in ms (defaults 1,000 and 60,000). */
  retry: Default(Type.Object({
    minDelayMs: Default(Type.Number({ minimum: 0, problem: 'must be a number of ms, 0 or more' }), 1_000),
    maxDelayMs: Default(Type.Number({ minimum: 0, problem: 'must be a number of ms, 0 or more' }), 60_000)
  }, { additionalProperties: false, problem: 'must be { minDelayMs, maxDelayMs } in ms' }), {}),
  /** How often the background delivery looks for changes due (retries, changes left behind), in ms (default 1,000). */
  pollIntervalMs: Default(PositiveInt('must be a whole number, at least 1'), 1_000),
  /** At start, look once through every tenant's outbox for changes a crash left behind (default true). */
  recoverOnStart: Default(Bool(), true),
  // Checked last (the validator goes in this order): a wrong setting above is named before any resource is looked at.
  /** The synced resources (see docs/syncing.md). */
  resources: Type.Array(SyncedResourceSchema, { minItems: 1, problem: 'must list at least one synced resource' })
}, { additionalProperties: false, problem: 'must be an object with resources' })

// MikroORM's own migrations settings, the part that names the app's tenant
// migrations and shapes the files migration:create writes. The migrations
// table is ours (one per tenant, beside fastify-tenancy's own migrations).
const MigrationClassShape = Fn('must be a migration class')
const TenantMigrationsSchema = Type.Unsafe<TenantMigrationsOptions>(Type.Object({
  path: Type.Optional(Type.String({ minLength: 1, problem: 'must be a folder path' })),
  pathTs: Type.Optional(Type.String({ minLength: 1, problem: 'must be a folder path' })),
  migrationsList: Type.Optional(Type.Array(Type.Union([
    MigrationClassShape,
    Type.Object({ name: Type.String({ minLength: 1 }), class: MigrationClassShape })
  ], { problem: 'must be a migration class or { name, class }' }), { problem: 'must be a list of migrations' })),
  transactional: Type.Optional(Bool()),
  allOrNothing: Type.Optional(Bool()),
  disableForeignKeys: Type.Optional(Bool()),
  emit: Type.Optional(oneOf(['ts', 'js', 'cjs'], 'must be "ts", "js" or "cjs"')),
  fileName: Type.Optional(Fn()),
  dropTables: Type.Optional(Bool()),
  safe: Type.Optional(Bool())
}, {
  additionalProperties: false,
  problem: 'must be MikroORM migrations settings: { path, pathTs } (a folder of migration files) or { migrationsList }'
}))

/** Which provider loads tenants: the shipped `orm` or `database` drivers, or one registered in `providerDrivers`. */
export type ProviderConfig =
  | { driver: 'orm', entity?: EntitySchema<any, any> }
  | { driver: 'database', table?: string, domainsTable?: string | null, resourceKeyColumn?: string | null }
  | { driver: string, [option: string]: unknown }

// One object shape for every driver: a driver's own settings are its business
// (the shipped ones check theirs); the driver name is checked against
// providerDrivers in rules.ts.
const ProviderSchema = Type.Unsafe<ProviderConfig>(Type.Object({
  driver: Type.String({ minLength: 1 }),
  entity: Type.Optional(EntitySchemaShape)
}, { problem: 'must be { driver: "orm" | "database" | a name from providerDrivers }' }))

export const TenancyOptionsSchema = Type.Object({
  database: DatabaseOptionsSchema,
  /** Your app's MikroORM instance for the central database, instead of one made by the plugin (its `entities` must include `centralEntities`; the plugin never closes it). */
  orm: Default(Shape<MikroORM>('mikroOrm', 'must be a MikroORM instance (MikroORM.init or initSync) of the central database'), null),
  /** Your tenant entities (the tables of each tenant), for `request.tenantEm`; their tables come from `tenantMigrations`. */
  tenantEntities: Default(Type.Array(EntitySchemaShape, { problem: 'must be a list of entities' }), []),
  /**
   * Your tenant migrations, as MikroORM's migrations settings: `{ path, pathTs }`
   * (a folder, as `fastify-tenancy migration:create` and `mikro-orm migration:create`
   * write it) or `{ migrationsList }`. Every path that makes or migrates a tenant runs them.
   */
  tenantMigrations: Default(TenantMigrationsSchema, null),
  /** Your own central entities, next to the shipped ones (the central entity of a synced resource such as companies). */
  centralEntities: Default(Type.Array(EntitySchemaShape, { problem: 'must be a list of entities' }), []),
  /** Hosts of the central app; they never identify a tenant. Default `['localhost', '127.0.0.1']`. */
  centralDomains: Default(Type.Array(
    // Punycode and over-long names are refused here as in the Host header (identification/host.ts), or no request could ever reach them.
    Type.String({ format: 'central-domain', problem: 'must be a lowercase hostname or IPv4 address (no port, no punycode, at most 253 characters)' }),
    { minItems: 1, problem: 'must list at least one hostname' }
  ), ['localhost', '127.0.0.1']),
  /** Resolvers, tried in order; the first whose identity names a known tenant wins. Default `['subdomain', 'domain']`. */
  identification: Default(Type.Array(Type.Union([
    ...RESOLVER_NAMES.map((name) => Type.Literal(name)),
    Type.Unsafe<IdentityResolver>(Type.Object({ name: Type.String(), resolve: Fn() }))
  ], { problem: `must be one of ${RESOLVER_NAMES.join(', ')} or your own { name, resolve(request, context) }` }),
  { minItems: 1, problem: 'must list at least one resolver' }), ['subdomain', 'domain']),
  /** Header read by the header resolver (default `x-tenant`). */
  header: Default(Type.String({ pattern: TOKEN, problem: 'must be an HTTP header name' }), 'x-tenant'),
  /** Cookie read by the cookie resolver (default `tenant`). */
  cookie: Default(Type.String({ pattern: TOKEN, problem: 'must be a cookie name' }), 'tenant'),
  /** Route parameter read (and hidden) by the path resolver (default `tenant`). */
  pathParameter: Default(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', problem: 'must be a route parameter name' }), 'tenant'),
  /** Default `{ driver: 'orm' }`. */
  provider: Default(ProviderSchema, { driver: 'orm' }),
  /** Your own provider drivers, by name. */
  providerDrivers: Default(Type.Record(Type.String(), Fn<ProviderDriver>('must be a function (config, context) => provider'), {
    problem: 'must be an object of driver functions'
  }), {}),
  /** The tenant cache; `false` turns it off. */
  cache: Default(Type.Union([Type.Literal(false), CacheOptionsSchema], { problem: 'must be an object or false' }), {}),
  /** Mode of routes that set no `config.tenancy` (default `tenant`). */
  defaultRouteMode: Default(oneOf(ROUTE_MODES, `must be one of ${ROUTE_MODES.join(', ')}`), 'tenant'),
  /**
   * Tenant migrations every tenant route needs (a name or a list), set at
   * deploy: a request for a tenant that has not run them yet gets 503
   * FST_TENANCY_MIGRATING with Retry-After instead of running the handler.
   * Routes add their own with `config: { tenancy: { requires } }`.
   */
  requires: Default(Type.Union([
    Type.String({ minLength: 1 }),
    Type.Array(Type.String({ minLength: 1 }))
  ], { problem: 'must be a migration name or a list of migration names' }), []),
  /** Folder under which each tenant gets a folder named by its resource key (default `./storage`). */
  storageRoot: Default(Type.String({ minLength: 1, problem: 'must be a folder path' }), './storage'),
  /** Prefix of tenant cache keys (default `tenant:`). */
  cachePrefix: Default(Type.String({ problem: 'must be a string' }), 'tenant:'),
  /** Your own bootstrappers, run after the shipped ones (database, logger, storage, cache). */
  bootstrappers: Default(Type.Array(
    Type.Unsafe<Bootstrapper>(Type.Object({ name: Type.String(), bootstrap: Fn(), revert: Fn() }, { problem: 'must be { name, bootstrap(scope), revert(scope) }' })),
    { problem: 'must be an array' }
  ), []),
  /** Run the central migrations when the plugin registers (default false). */
  migrateCentral: Default(Bool(), false),
  /** `database` (default): a PostgreSQL database per tenant. `schema`: a schema per tenant inside the hosts' databases. `shared`: shared tables with row-level security. */
  strategy: Default(oneOf(STRATEGIES, 'must be "database", "schema" or "shared"'), 'database'),
  /** Strategy `shared`: the app role's URL, the central role's URL, the schema (see docs/strategies.md). */
  shared: Type.Optional(SharedOptionsSchema),
  provisioning: Default(ProvisioningOptionsSchema, {}),
  /** Resource syncing: the synced resources and the mode (see docs/syncing.md). Off when not given. */
  sync: Default(SyncOptionsSchema, null),
  /** Schema of the job queue's (pg-boss) tables in the central database (default `fastify_tenancy_queue`). */
  queueSchema: Default(Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', problem: 'must be a lowercase schema name' }), 'fastify_tenancy_queue'),
  /** How often the queue's maintenance runs, in seconds (default 60): it hands expired jobs of dead workers back to the queue. */
  queueMaintenanceSeconds: Default(PositiveInt(), 60),
  /** Renames: how long a former identifier or domain redirects to the new one and stays reserved. */
  renames: Default(Type.Object({
    /** In ms (default 90 days). */
    keepMs: Default(Type.Integer({ minimum: 0, problem: 'must be a whole number of milliseconds, 0 or more' }), 90 * 24 * 60 * 60 * 1000)
  }, { additionalProperties: false, problem: 'must be an object such as { keepMs }' }), {}),
  /** Moving tenants between database hosts (`app.tenancy.move`, `tenants:move`; see docs/operations.md, "Moving a tenant"). */
  moves: Default(Type.Object({
    /** How long a moved tenant's source database is kept before it is dropped, in ms (default 7 days; 0: at the next sweep). */
    keepSourceMs: Default(Type.Integer({ minimum: 0, problem: 'must be a whole number of milliseconds, 0 or more' }), 7 * 24 * 60 * 60 * 1000),
    /** How long the switch waits for the tenant's requests in flight (on every instance) before it ends their connections, in ms (default 2,000). */
    drainMs: Default(PositiveInt(), 2_000),
    /** How long the first copy of the rows may take, in ms (default 1 hour). */
    copyTimeoutMs: Default(PositiveInt(), 60 * 60 * 1000),
    /** How long the target may take to catch up with the source, in ms (default 60,000). */
    catchUpTimeoutMs: Default(PositiveInt(), 60_000),
    /** The URL a target server uses to reach each host for logical replication, by host name (default: `database.hosts`; set it when the app reaches hosts through a pooler). */
    replicationUrls: Default(Type.Record(Type.String({ pattern: '^[a-z0-9_-]{1,63}$' }), PostgresUrl(), { problem: 'must map host names to postgres:// URLs' }), {})
  }, { additionalProperties: false, problem: 'must be an object such as { keepSourceMs, drainMs }' }), {}),
  /** The clock (ms since the epoch) by which renames, maintenance, impersonation tokens and the tenant cache's entries expire; tests move it instead of sleeping. Default `Date.now`. */
  clock: Default(Fn<() => number>('must be a function returning milliseconds since the epoch'), Date.now),
  /** Serve impersonation links on tenant hosts (`/_tenancy/impersonate`, default true). */
  impersonation: Default(Bool(), true),
  /**
   * The registration's name (default `tenants`): `app.tenancies.<name>` and
   * `request.tenancies.<name>`. Only `tenants` also gets `app.tenancy`,
   * `request.tenant` and `request.tenantEm`; register the plugin again under
   * another name (`teams`) for a second tenancy beside it.
   */
  name: Default(Type.String({ pattern: '^[a-z][a-zA-Z0-9_]{0,39}$', problem: 'must be a name of up to 40 letters, digits or underscores, starting with a lowercase letter' }), 'tenants')
}, { additionalProperties: false, problem: 'must be an object' })

/** The plugin's options, as `app.register(tenancyPlugin, options)` takes them. */
export type TenancyOptions = Static<typeof TenancyOptionsSchema>
export type TenancyDatabaseOptions = Static<typeof DatabaseOptionsSchema>
export type ProvisioningOptions = Static<typeof ProvisioningOptionsSchema>
export type SyncOptions = Static<typeof SyncOptionsSchema>
/** The `sync` option with every default filled in. */
export type ResolvedSyncOptions = Resolved<typeof SyncOptionsSchema>
export type SharedOptions = Static<typeof SharedOptionsSchema>

/** Options with every default filled in. */
export type ResolvedOptions = Omit<Resolved<typeof TenancyOptionsSchema>, 'database' | 'shared'> & {
  database: Omit<Resolved<typeof DatabaseOptionsSchema>, 'hosts' | 'defaultHost'> & { hosts: Record<string, string>, defaultHost: string }
  /** Strategy `shared` only, with the central role worked out (see database/shared/shared-options.ts). */
  shared: ResolvedSharedOptions | null
}
