import type { Tenant } from '../tenant.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { RunAsTenant } from '../context/tenant-scopes.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { MigrationStatus, TenantMigrator } from '../database/tenant-migrator.js'
import { TenantNotFoundError } from '../errors.js'
import { misuse } from '../misuse.js'
import { mapLimit } from '../support/map-limit.js'
import { migrateShared, sharedMigrationStatus } from '../database/shared/shared-schema.js'
import { ownerUrlOf } from '../database/tenant-target.js'
import type { TenantLifecycle } from './tenants.js'
import type { ResolvedSharedOptions } from '../database/shared/shared-options.js'
import type { MigratingMarks } from './migrating-marks.js'
import type { HeldLock } from '../database/advisory-locks.js'

export interface FanOutOptions {
  /** Identifiers or keys of the tenants to work on (default: every tenant with a database). */
  tenants?: readonly string[]
  /** Identifiers or keys to leave out. */
  skipTenants?: readonly string[]
  /** How many tenants at once (default 4). */
  concurrency?: number
  /** Called as each tenant finishes, for progress displays. */
  onResult?: (result: TenantResult) => void
}

/** What happened to one tenant in a fan-out. */
export interface TenantResult {
  key: string
  identifier: string
  ok: boolean
  /** Migrations run (migrate) or rolled back (rollback). */
  migrations: string[]
  error?: string
  /** The failure's FST_TENANCY_* code, when it has one. */
  code?: string
  ms: number
}

type Operation = 'migrate' | 'rollback' | 'seed'

/** What the fan-out works with. */
export interface TenantMigrationsParts {
  lifecycle: Pick<TenantLifecycle, 'select' | 'find' | 'locked'>
  targetOf: TargetOf
  runAsTenant: RunAsTenant
  /** The tenant migrations (fastify-tenancy's own, then the app's). */
  migrator: TenantMigrator
  seeder: ((scope: TenantScope) => Promise<void>) | null
  /** Strategy `shared`: the shared tables, migrated once for every tenant. */
  shared: ResolvedSharedOptions | null
  /**
   * Marks the tenant (`*`: the shared tables) as being migrated while one
   * migrate or rollback runs, on every instance, so its requests wait;
   * `settle` records the outcome before the mark is cleared.
   */
  marks: Pick<MigratingMarks, 'during'>
  /** Records what a tenant (null: the shared tables) has run after a migrate or rollback of it. */
  settle: (tenant: Tenant | null, operation: 'migrate' | 'rollback', ok: boolean) => Promise<void>
}

/** Runs migrate, rollback or seed over many tenants with bounded concurrency; one tenant's failure does not stop the others. */
export class TenantMigrations {
  private readonly lifecycle: Pick<TenantLifecycle, 'select' | 'find' | 'locked'>
  private readonly targetOf: TargetOf
  private readonly runAsTenant: RunAsTenant
  private readonly migrator: TenantMigrator
  private readonly seeder: ((scope: TenantScope) => Promise<void>) | null
  private readonly shared: ResolvedSharedOptions | null
  private readonly marks: Pick<MigratingMarks, 'during'>
  private readonly settle: TenantMigrationsParts['settle']

  constructor (parts: TenantMigrationsParts) {
    this.lifecycle = parts.lifecycle
    this.targetOf = parts.targetOf
    this.runAsTenant = parts.runAsTenant
    this.migrator = parts.migrator
    this.seeder = parts.seeder
    this.shared = parts.shared
    this.marks = parts.marks
    this.settle = parts.settle
  }

  /** Which tenant migrations a tenant has run, and which not (in strategy `shared`: the shared tables'). */
  async status (tenant: Tenant): Promise<MigrationStatus> {
    if (this.shared !== null) return await sharedMigrationStatus(this.sharedOf(tenant, this.shared), this.migrator)
    return await this.migrator.status(this.targetOf(tenant))
  }

  /**
   * Migrates or rolls back one tenant, marked as being migrated meanwhile (its
   * requests wait, on every instance). The caller holds the tenant's lock.
   * Every path that migrates a served tenant goes through here.
   */
  async migrateOne (tenant: Tenant, operation: 'migrate' | 'rollback', held?: HeldLock): Promise<string[]> {
    const shared = this.shared
    if (shared !== null) {
      // Strategy shared: only an isolated tenant has tables of its own to migrate (the shared tables' shape, in its database).
      if (tenant.isolation == null) throw misuse.migrateSharedTenant()
      return await this.marks.during(tenant.key, async () =>
        await migrateShared({ ...this.sharedOf(tenant, shared), appRole: appRoleOf(shared.url) }, this.migrator, operation === 'migrate' ? 'up' : 'down'),
      async (ok) => { await this.settle(tenant, operation, ok) }, held)
    }
    const target = this.targetOf(tenant)
    return await this.marks.during(tenant.key, async () =>
      operation === 'migrate' ? await this.migrator.up(target) : await this.migrator.down(target),
    async (ok) => { await this.settle(tenant, operation, ok) }, held)
  }

  async run (operation: Operation, options: FanOutOptions): Promise<TenantResult[]> {
    const concurrency = options.concurrency ?? 4
    if (!Number.isInteger(concurrency) || concurrency < 1) throw misuse.badConcurrency()
    const seeder = this.seeder
    if (operation === 'seed' && seeder === null) throw misuse.noSeeder()
    const chosen = await this.lifecycle.select(options.tenants, options.skipTenants)
    // Tenants without a database (provisioning, failed) are left out unless named.
    const named = options.tenants !== undefined && options.tenants.length > 0
    const tenants = named ? chosen : chosen.filter((t) => t.status === 'active' || t.status === 'suspended')
    const shared = this.shared
    if (shared !== null && operation !== 'seed') return await this.runShared(shared, operation, tenants, options)
    return await mapLimit(tenants, concurrency, async (tenant: Tenant) => {
      const result = await this.one(operation, tenant)
      options.onResult?.(result)
      return result
    })
  }

  /**
   * One tenant's migrate, rollback or seed: the one per-tenant path, which
   * the fan-out and the rollouts both take. Never throws: a failure is the
   * tenant's result, with its reason.
   */
  async one (operation: Operation, tenant: Pick<Tenant, 'key' | 'identifier'>): Promise<TenantResult> {
    const started = performance.now()
    const seeder = this.seeder
    try {
      if (operation === 'seed' && seeder === null) throw misuse.noSeeder()
      // Under the tenant's lock, so a create, provision or delete of the same tenant never runs at the same time.
      const migrations = await this.lifecycle.locked(tenant.key, async (held) => {
        // Read again under the lock: the tenant may have been deleted while this waited.
        const current = await this.lifecycle.find(tenant.key)
        if (current === null || current.status === 'deleting') throw new TenantNotFoundError(tenant.identifier)
        if (operation === 'seed') {
          await this.runAsTenant(current, async (scope) => { await (seeder as NonNullable<typeof seeder>)(scope) })
          return []
        }
        return await this.migrateOne(current, operation, held)
      })
      return { key: tenant.key, identifier: tenant.identifier, ok: true, migrations, ms: performance.now() - started }
    } catch (error) {
      const code = (error as { code?: unknown }).code
      return { key: tenant.key, identifier: tenant.identifier, ok: false, migrations: [], error: (error as Error).message, ...(typeof code === 'string' && code.startsWith('FST_TENANCY_') ? { code } : {}), ms: performance.now() - started }
    }
  }

  /**
   * Strategy `shared`: one migration of the shared tables serves every tenant,
   * so it runs once (as the central role) and each tenant's result is that one.
   */
  private async runShared (shared: ResolvedSharedOptions, operation: 'migrate' | 'rollback', tenants: Tenant[], options: FanOutOptions): Promise<TenantResult[]> {
    const ofShared = await this.runSharedTables(shared, operation, tenants.filter((t) => t.isolation == null), options)
    // Isolated tenants' databases (or schemas) have the shared tables' shape: each is migrated the same way, after the shared tables.
    const isolated = await mapLimit(tenants.filter((t) => t.isolation != null), options.concurrency ?? 4, async (tenant: Tenant) => {
      const result = await this.one(operation, tenant)
      options.onResult?.(result)
      return result
    })
    return [...ofShared, ...isolated]
  }

  /** Where a shared-strategy tenant's tables are: the shared tables, or its isolated database or schema (as their owner). */
  private sharedOf (tenant: Tenant, shared: ResolvedSharedOptions): ResolvedSharedOptions {
    if (tenant.isolation !== 'database' && tenant.isolation !== 'schema') return shared
    const target = this.targetOf(tenant)
    return { ...shared, centralUrl: ownerUrlOf(target), schema: target.schema ?? shared.schema }
  }

  private async runSharedTables (shared: ResolvedSharedOptions, operation: 'migrate' | 'rollback', tenants: Tenant[], options: FanOutOptions): Promise<TenantResult[]> {
    const started = performance.now()
    let migrations: string[] = []
    let error: string | undefined
    try {
      // One mark for every tenant: the shared tables are theirs.
      migrations = await this.marks.during('*', async () => await migrateShared({ ...shared, appRole: appRoleOf(shared.url) }, this.migrator, operation === 'migrate' ? 'up' : 'down'),
        async (ok) => { await this.settle(null, operation, ok) })
    } catch (e) {
      error = (e as Error).message
    }
    const ms = performance.now() - started
    return tenants.map((tenant) => {
      const result: TenantResult = error === undefined
        ? { key: tenant.key, identifier: tenant.identifier, ok: true, migrations, ms }
        : { key: tenant.key, identifier: tenant.identifier, ok: false, migrations: [], error, ms }
      options.onResult?.(result)
      return result
    })
  }
}

function appRoleOf (url: string): string {
  return decodeURIComponent(new URL(url).username)
}
