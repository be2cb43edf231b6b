import type { SchemaDrift } from './database/schema-drift.js'
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'
import type { TenantDirectory } from './lifecycle/tenant-directory.js'
import type { CreateTenantInput } from './lifecycle/tenant-input.js'
import type { FanOutOptions, TenantResult } from './lifecycle/tenant-migrations.js'
import type { MigrationState } from './lifecycle/migration-states.js'
import type { RolloutsApi } from './rollouts/rollout-types.js'
import type { TenancyEvents, TenantChanges } from './events/tenancy-events.js'
import type { TenantDomains } from './lifecycle/tenant-domains.js'
import type { TenantJobs } from './jobs/tenant-jobs.js'
import type { TenantClusters } from './clusters/tenant-clusters.js'
import type { SyncApi } from './sync/sync-api.js'
import type { ConnectionStats } from './database/tenant-connections.js'
import type { MaintenanceSettings, MaintenanceState } from './maintenance/maintenance-settings.js'
import type { MaintenanceStarted } from './maintenance/maintenance-mode.js'
import type { FormerName } from './renames/former-names.js'
import type { Impersonation } from './impersonation/impersonation.js'
import type { TenantRequestStats } from './telemetry/request-stats.js'
import type { IsolateOptions, MoveOptions } from './moves/tenant-mover.js'
import type { MoveRecord } from './moves/move-store.js'
import type { BundleManifest } from './moves/bundle-format.js'
import type { ImportOptions, ImportResult, TableComparison } from './moves/tenant-bundles.js'
import type { SwapResult } from './moves/tenant-swap.js'
import type { PlannedMove, RebalanceBy, RebalancePlan } from './moves/rebalance.js'
import type { Readable, Writable } from 'node:stream'

/**
 * `app.tenancy`: everything an app, the admin panel and the CLI may use.
 * Internal parts (scopes, identification, pools) are not on it.
 */
export interface TenancyApi {
  /** Runs `fn(scope)` as `tenant`; nests, and the previous tenant (or none) is back when `fn` settles. */
  run: <R>(tenant: Tenant, fn: (scope: TenantScope) => R | Promise<R>) => Promise<R>
  /** The running code's tenant, or null in a central context. */
  current: () => Tenant | null
  /** The running code's scope (tenant, logger, storage, cache prefix, EntityManager), or null. */
  scope: () => TenantScope | null
  /** The current tenant's EntityManager; throws FST_TENANCY_NO_TENANT_CONTEXT in a central context. */
  em: () => EntityManager
  /** Tenant lookups: cached `byIdentifier` / `byKey` / `byResourceKey` / `byDomain`, uncached `find` / `select`, and `target`. */
  tenants: TenantDirectory
  /** Creates a tenant with its database at the newest migration; active when this resolves. `key` + `adopt: true` takes over an existing database. */
  create: (input: CreateTenantInput & { key?: string, adopt?: boolean }) => Promise<Tenant>
  /** Runs provisioning again for a tenant (after a failure). */
  provision: (tenant: Pick<Tenant, 'key'>) => Promise<Tenant>
  /** Changes a tenant's identifier, name, data or cluster, all or nothing, by the rules of `create`; emits `tenant.updating` / `tenant.updated`. */
  update: (tenant: Pick<Tenant, 'key'>, changes: TenantChanges) => Promise<Tenant>
  /** Suspends an active tenant (its requests get 403); emits `tenant.suspending` / `tenant.suspended`. */
  suspend: (tenant: Pick<Tenant, 'key'>) => Promise<Tenant>
  /** Activates a suspended tenant again; emits `tenant.activating` / `tenant.activated`. */
  activate: (tenant: Pick<Tenant, 'key'>) => Promise<Tenant>
  /** A tenant's domains: `add`, `remove`, `makePrimary`, `list`, each checked like `create` and with paired events. */
  domains: TenantDomains
  /** Deletes a tenant, its database, domains and mapping rows. Running it twice is harmless. */
  delete: (tenant: Pick<Tenant, 'key' | 'databaseHost'>) => Promise<void>
  /** Migrates tenant databases to the newest migration, `concurrency` at a time; one failure does not stop the others. */
  migrate: (options?: FanOutOptions) => Promise<TenantResult[]>
  /** Rolls tenant databases back by one migration. */
  rollback: (options?: FanOutOptions) => Promise<TenantResult[]>
  /** Runs the provisioning seeder in each tenant's context. */
  seed: (options?: FanOutOptions) => Promise<TenantResult[]>
  /** Which tenant migrations a tenant's database has run, and which it has not. */
  migrationStatus: (tenant: Tenant) => Promise<{ executed: string[], pending: string[], unknown?: string[] }>
  /**
   * What each of these tenants' databases had run when last seen (by a
   * migrate, a rollback, provisioning or `migrationStatus`), read from the
   * central database without connecting to theirs; a tenant never seen yet
   * is not in the map.
   */
  migrationStates: (keys: readonly string[]) => Promise<Map<string, MigrationState>>
  /**
   * Rollouts: migrate, rollback or seed over many tenants, recorded in the
   * central database first so a crash resumes where it stopped: `start`,
   * `run`, `resume`, `halt`, `list`, `get` (waves, counts, failures).
   */
  rollouts: RolloutsApi
  /**
   * Connects to the tenant and compares its actual schema with the
   * template's by a checksum of the catalog (`changed`: altered by hand);
   * strategies `database` and `schema` (strategy `shared` has one set of
   * tables: FST_TENANCY_MISCONFIGURED).
   */
  verifySchema: (tenant: Tenant) => Promise<SchemaDrift>
  /** Lifecycle events, in pairs: `app.tenancy.events.on('tenant.created', fn)`. */
  events: TenancyEvents
  /** Tenant-aware jobs: `define(name, handler)`, `send(name, data)`. */
  jobs: TenantJobs
  /** Tenant clusters with a Parent Tenant. */
  clusters: TenantClusters
  /** Resource syncing (`attach`, `detach`, `resync`), or null when `sync` is not configured. */
  sync: SyncApi | null
  /** Forgets cached tenants (done for you when tenants or domains change, on every instance). */
  invalidate: () => void
  /** Open pools and connections, and `tenants`: each tenant's request count, 5xx count and latency on this instance, by key. */
  stats: () => ConnectionStats & { tenants: Record<string, TenantRequestStats> }
  /** The central MikroORM instance (the app's own when it passed `orm`). */
  orm: MikroORM
  /**
   * Puts a tenant in maintenance mode on every instance: its routes answer 503
   * with Retry-After (a page or JSON by Accept), except `allow`ed addresses and
   * holders of the returned bypass token. Calling it again changes the settings.
   */
  maintenance: (tenant: Pick<Tenant, 'key'>, settings?: MaintenanceSettings) => Promise<MaintenanceStarted>
  /** Ends a tenant's maintenance mode. */
  endMaintenance: (tenant: Pick<Tenant, 'key'>) => Promise<void>
  /** The tenant's maintenance (message, until, allow, startedAt), or null when it serves normally. */
  maintenanceOf: (tenant: Pick<Tenant, 'key'>) => MaintenanceState | null
  /** The names a tenant had before a rename that still redirect to it, with when each expires. */
  formerNames: (tenant: Pick<Tenant, 'key'>) => Promise<FormerName[]>
  /** Single-use impersonation links (`issue`), and `onUse(fn)` for every issue, start, refusal and end. */
  impersonation: Impersonation
  /**
   * Moves a tenant's database to another host (`{ host }`), online with
   * PostgreSQL logical replication (its requests wait only at the switch), or
   * `offline: true`. Called again after a crash, it finishes the move.
   */
  move: (tenant: Pick<Tenant, 'key'>, options: MoveOptions) => Promise<MoveRecord>
  /**
   * Strategy `shared`: moves a tenant's rows out of the shared tables into a
   * database of its own (on `host`, default the default host) with the same
   * steps and hold as `move`; the database keeps the shared tables' shape
   * and row-level security. `consolidate` moves them back. Both finish when
   * called again after a crash; `moves.abort` undoes them before the switch.
   */
  isolate: (tenant: Pick<Tenant, 'key'>, options?: IsolateOptions) => Promise<MoveRecord>
  consolidate: (tenant: Pick<Tenant, 'key'>, options?: Omit<IsolateOptions, 'host'>) => Promise<MoveRecord>
  /** Moves: `abort(t)` undoes one not yet switched, `status(t)` the latest, `history(t)` all, `sweep()` drops kept sources due. */
  moves: {
    abort: (tenant: Pick<Tenant, 'key'>) => Promise<MoveRecord>
    status: (tenant: Pick<Tenant, 'key'>) => Promise<MoveRecord | null>
    history: (tenant: Pick<Tenant, 'key'>) => Promise<MoveRecord[]>
    sweep: () => Promise<number>
  }
  /**
   * One tenant as a portable bundle: `export(identifierOrKey, out)` writes it
   * (one consistent snapshot); `import(input, { as, host })` makes a tenant of
   * it in this app's strategy, refusing a bundle of a newer schema, and maps
   * it to the bundle's synced resources; `restore` is `import` that also
   * tells which resources were mapped again and which could not be.
   */
  bundles: {
    export: (tenant: string, out: Writable) => Promise<BundleManifest>
    import: (input: Readable, options?: ImportOptions) => Promise<Tenant>
    restore: (input: Readable, options?: ImportOptions) => Promise<ImportResult>
    /** Each tenant table's row count and checksum in two tenants, side by side (`tenants:compare`). */
    compare: (a: string, b: string) => Promise<TableComparison[]>
  }
  /**
   * Swaps a restored copy in: `swap('acme', 'acme-restored')` gives the copy
   * acme's identifier and domains, and keeps acme's former data under
   * `acme-restored`, held (serving no one) until it is deleted. Under both
   * tenants' lifecycle locks, with their requests held meanwhile; one
   * central transaction, so a crash leaves it undone (run it again).
   */
  swap: (tenant: string, copy: string) => Promise<SwapResult>
  /**
   * Evening out database hosts (strategy database): `plan(by)` proposes
   * moves by database size (`'size'`) or by this instance's requests
   * (`'load'`, from `stats()`); `apply(plan)` runs them one at a time
   * through `move`, stopping at the first that fails.
   */
  rebalance: {
    plan: (by?: RebalanceBy) => Promise<RebalancePlan>
    apply: (plan: RebalancePlan, onMove?: (move: PlannedMove, record: MoveRecord) => void) => Promise<MoveRecord[]>
  }
}
