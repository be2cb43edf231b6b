import type { Tenant } from '../tenant.js'
import type { CentralListener } from '../database/central-listener.js'
import type { MigratingMarks } from './migrating-marks.js'
import { MIGRATION_STATES_CHANNEL } from './migration-states.js'
import { TenantMigratingError } from '../errors.js'
import { Lru } from '../lru.js'

/** The tenant migrations a tenant has run, as `request.tenant.migrations`. */
export interface TenantMigrationSet {
  /** Whether the tenant has run migration `name`. */
  has: (name: string) => boolean
  /** Every migration it has run, oldest first. */
  readonly names: readonly string[]
}

export interface MigrationGateOptions {
  /** What a tenant has run, as the central record has it (null: never recorded). */
  recorded: (tenant: Tenant) => Promise<readonly string[] | null>
  /** What a tenant has run, read from its database (and recorded): for a tenant never recorded, on a route that requires a migration. */
  read: (tenant: Tenant) => Promise<readonly string[]>
  /** Whose migrations a tenant's are: its key, or `*` in strategy `shared` (one set of tables for all). */
  idOf: (tenant: Tenant) => string
  marks: Pick<MigratingMarks, 'has' | 'wait'>
  /** How long a request of a tenant being migrated waits (`database.acquireTimeoutMs`). */
  waitMs: number
  /** Announces recorded states (null: entries expire after `ttlMs` instead). */
  listener: CentralListener | null
  /** How long an entry is kept when no listener announces changes, in ms (default 2,000). */
  ttlMs?: number
  /** Tenants whose migrations are kept in memory (default 10,000). */
  max?: number
}

/**
 * Serving during a rollout: a request for a tenant being migrated waits for
 * the end (bounded), and a route that requires a migration the tenant does
 * not have is answered 503 FST_TENANCY_MIGRATING with Retry-After instead of
 * running against a schema without it. What each tenant has run is read from
 * the central record once per instance and kept until a recorded change is
 * announced (by any instance), so the next request after a migrate is served.
 */
export class MigrationGate {
  private readonly options: MigrationGateOptions
  /** By id; null: never recorded. */
  private readonly sets: Lru<string, { set: TenantMigrationSet | null }>
  private readonly loading = new Map<string, Promise<TenantMigrationSet | null>>()

  constructor (options: MigrationGateOptions) {
    this.options = options
    this.sets = new Lru({ max: options.max ?? 10_000, ttl: options.listener === null ? (options.ttlMs ?? 2_000) : 0 })
    options.listener?.subscribe(MIGRATION_STATES_CHANNEL, {
      onNotify: (payload) => { if (payload !== undefined) this.forget(payload) },
      // Lost or back: a change may have gone unheard.
      onListening: () => { this.forgetAll() }
    })
  }

  /** Whether this instance holds the tenant's requests for a migration now (for operators and tests). */
  migrating (tenant: Tenant): boolean {
    return this.options.marks.has(this.options.idOf(tenant))
  }

  /** A recorded change of `id`'s migrations (this instance's or announced): read again on the next request. */
  forget (id: string): void {
    this.sets.delete(id)
    this.loading.delete(id)
  }

  forgetAll (): void {
    this.sets.clear()
    this.loading.clear()
  }

  /**
   * The tenant's migrations (null: never recorded, and the route requires
   * none), once it may be served a route that requires `required`: at once
   * when known and not being migrated, else a promise. Throws (or rejects
   * with) FST_TENANCY_MIGRATING.
   */
  admit (tenant: Tenant, required: readonly string[]): TenantMigrationSet | null | Promise<TenantMigrationSet | null> {
    const id = this.options.idOf(tenant)
    if (this.options.marks.has(id)) return this.afterMigration(tenant, id, required)
    const known = this.sets.get(id)
    if (known !== undefined && (known.set !== null || required.length === 0)) return this.check(tenant, known.set, required)
    return this.settled(tenant, id, required)
  }

  private async afterMigration (tenant: Tenant, id: string, required: readonly string[]): Promise<TenantMigrationSet | null> {
    const ended = await this.options.marks.wait(id, this.options.waitMs)
    if (!ended) throw migratingError(tenant.identifier, required.length === 0 ? 'its new migrations' : required.join(', '), this.options.waitMs)
    // What the migration recorded, read now (its announcement may still be on the way).
    this.forget(id)
    return await this.settled(tenant, id, required)
  }

  private async settled (tenant: Tenant, id: string, required: readonly string[]): Promise<TenantMigrationSet | null> {
    let set = await this.load(tenant, id)
    // Never recorded (made before states were kept): its database says, and is recorded for next time.
    if (set === null && required.length > 0) {
      set = migrationSet(await this.options.read(tenant))
      this.forget(id)
    }
    return this.check(tenant, set, required)
  }

  /** One reading per tenant at a time; a change announced meanwhile makes the next request read again. */
  private async load (tenant: Tenant, id: string): Promise<TenantMigrationSet | null> {
    let pending = this.loading.get(id)
    if (pending === undefined) {
      const reading: Promise<TenantMigrationSet | null> = this.options.recorded(tenant).then((names) => {
        const set = names === null ? null : migrationSet(names)
        if (this.loading.get(id) === reading) this.sets.set(id, { set })
        return set
      }).finally(() => { if (this.loading.get(id) === reading) this.loading.delete(id) })
      pending = reading
      this.loading.set(id, reading)
    }
    return await pending
  }

  private check (tenant: Tenant, set: TenantMigrationSet | null, required: readonly string[]): TenantMigrationSet | null {
    if (required.length === 0) return set
    const missing = set === null ? required : required.filter((name) => !set.has(name))
    if (missing.length > 0) throw migratingError(tenant.identifier, missing.join(', '), this.options.waitMs)
    return set
  }
}

/** A read-only set of migration names. */
export function migrationSet (names: readonly string[]): TenantMigrationSet {
  const all = new Set(names)
  return Object.freeze({ has: (name: string) => all.has(name), names: Object.freeze([...names]) })
}

/** FST_TENANCY_MIGRATING with a Retry-After of the wait bound (at least a second). */
export function migratingError (identifier: string, missing: string, waitMs: number): Error {
  const error = new TenantMigratingError(identifier, missing) as Error & { headers?: Record<string, string> }
  error.headers = { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) }
  return error
}

/** A route's required migrations: the plugin's, then the route's own (a name or a list). */
export function requiredMigrations (pluginWide: string | readonly string[], route: string | readonly string[] | undefined): readonly string[] {
  const list = (v: string | readonly string[] | undefined): readonly string[] => v === undefined ? [] : typeof v === 'string' ? [v] : v
  return [...new Set([...list(pluginWide), ...list(route)])]
}

/**
 * Puts the tenant's migrations on it as `tenant.migrations` (not enumerable:
 * not serialised, not copied by a spread, unseen by an ORM entity's
 * metadata). The tenant object is shared by the tenant's requests on this
 * instance; what it has run is a fact of the tenant, the same for all.
 */
export function withMigrations (tenant: Tenant, set: TenantMigrationSet): void {
  if ((tenant as { migrations?: TenantMigrationSet }).migrations === set || !Object.isExtensible(tenant)) return
  Object.defineProperty(tenant, 'migrations', { value: set, configurable: true, enumerable: false, writable: false })
}
