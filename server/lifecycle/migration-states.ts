import type { SqlExecutor } from '../providers/provider.js'
import type { FanOutOptions, TenantResult } from './tenant-migrations.js'
import type { CentralTables } from '../database/central-schema.js'

/** What a tenant database had run of the tenant migrations when last seen. */
export interface MigrationState {
  executed: string[]
  /** The known tenant migrations it had not run. */
  pending: string[]
  /** Migrations it had run that the app's tenant migrations do not have (a newer deploy's, or removed ones). */
  unknown: string[]
  /** Why the last migrate or check of this tenant failed, or null. */
  error: string | null
  checkedAt: Date
}

/**
 * The tenant migrations each tenant database has run, as last seen, kept in
 * the central database: a migrate, a rollback, provisioning and every status
 * check write it, so a screen over thousands of tenants reads one table
 * instead of connecting to each tenant database.
 *
 * Writes carry the moment their reading began: a check that started before a
 * migrate finished never overwrites what the migrate recorded.
 */
/** The channel on which a recorded state is announced (payload: the tenant's key), so every instance reads it again. */
export const MIGRATION_STATES_CHANNEL = 'fastify_tenancy_migration_states'

export class MigrationStates {
  constructor (
    private readonly execute: SqlExecutor,
    private readonly t: CentralTables,
    private readonly known: () => Promise<readonly string[]>,
    private readonly now: () => number = Date.now
  ) {}

  /** Records what a tenant database has run (`executed`), or a failure that leaves the last known list as it was. */
  async record (key: string, seen: { executed: readonly string[] } | { error: string }, since: number = this.now()): Promise<void> {
    const at = new Date(since)
    if ('error' in seen) {
      await this.execute(`with written as (insert into ${this.t.tenant_migration_states} as s (tenant_key, error, checked_at)
        select ?, ?, ? where exists (select 1 from ${this.t.tenants} where key = ?)
        on conflict (tenant_key) do update set error = excluded.error, checked_at = excluded.checked_at
        where s.checked_at <= excluded.checked_at returning tenant_key)
        select pg_notify('${MIGRATION_STATES_CHANNEL}', tenant_key::text) from written`, [key, seen.error.slice(0, 2000), at, key])
      return
    }
    // The tenant may be gone by now (deleted while it was being migrated): then there is nothing to record.
    // Announced to every instance (after the commit), so routes that require a migration serve the tenant at once.
    await this.execute(`with written as (insert into ${this.t.tenant_migration_states} as s (tenant_key, executed, error, checked_at)
      select ?, ?::text[], null, ? where exists (select 1 from ${this.t.tenants} where key = ?)
      on conflict (tenant_key) do update set executed = excluded.executed, error = null, checked_at = excluded.checked_at
      where s.checked_at <= excluded.checked_at returning tenant_key)
      select pg_notify('${MIGRATION_STATES_CHANNEL}', tenant_key::text) from written`, [key, `{${seen.executed.map((n) => `"${n.replace(/["\\]/g, '\\$&')}"`).join(',')}}`, at, key])
  }

  /** The recorded states of these tenants; a tenant never seen yet is left out. */
  async of (keys: readonly string[]): Promise<Map<string, MigrationState>> {
    const out = new Map<string, MigrationState>()
    if (keys.length === 0) return out
    const known = await this.known()
    const rows = await this.execute(`select tenant_key, executed, error, checked_at from ${this.t.tenant_migration_states} where tenant_key = any(?::uuid[])`, [`{${keys.join(',')}}`])
    for (const r of rows) {
      const executed = (r.executed as string[] | null) ?? []
      const ran = new Set(executed)
      const knownSet = new Set(known)
      out.set(String(r.tenant_key), {
        executed,
        pending: known.filter((name) => !ran.has(name)),
        unknown: executed.filter((name) => !knownSet.has(name)),
        error: (r.error as string | null) ?? null,
        checkedAt: new Date(r.checked_at as string)
      })
    }
    return out
  }

  /** Tells every instance that `id`'s migrations changed without a row to write (`*`: strategy `shared`'s one set of tables). */
  async announce (id: string): Promise<void> {
    await this.execute(`select pg_notify('${MIGRATION_STATES_CHANNEL}', ?)`, [id])
  }

  /** The migrations a tenant had run when last recorded (null: never recorded, or its last reading failed before any was known). */
  async executedOf (key: string): Promise<string[] | null> {
    const rows = await this.execute(`select executed from ${this.t.tenant_migration_states} where tenant_key = ?`, [key])
    return (rows[0]?.executed as string[] | null | undefined) ?? null
  }

  /**
   * A fan-out's options that record each tenant's result: a migrate that
   * succeeded ran every known migration; a failure keeps the last known list
   * with its reason; a rollback is checked again afterwards by `recheck`.
   * The returned `settled` waits for the writes.
   */
  follow (operation: 'migrate' | 'rollback' | 'seed', options: FanOutOptions, recheck: (key: string) => Promise<void>): { options: FanOutOptions, settled: () => Promise<void> } {
    if (operation === 'seed') return { options, settled: async () => {} }
    const writes: Array<Promise<void>> = []
    const since = this.now()
    const onResult = (result: TenantResult): void => {
      writes.push(this.recordResult(operation, result, recheck, since))
      options.onResult?.(result)
    }
    return { options: { ...options, onResult }, settled: async () => { await Promise.all(writes) } }
  }

  /**
   * Records one tenant's result of a migrate or rollback (a seed changes no
   * migrations): a migrate that succeeded ran every known migration; a
   * failure keeps the last known list with its reason; a rollback is checked
   * again by `recheck`. A record that cannot be written leaves the state as
   * it was: the result itself stands.
   */
  async recordResult (operation: 'migrate' | 'rollback' | 'seed', result: TenantResult, recheck: (key: string) => Promise<void>, since: number = this.now()): Promise<void> {
    if (operation === 'seed') return
    // A failure is seen at its end, after the settle that read the tenant's list again (at a later time than `since`).
    const write = !result.ok
      ? this.record(result.key, { error: result.error ?? 'failed' }, this.now())
      : operation === 'migrate' ? this.known().then(async (known) => { await this.record(result.key, { executed: [...known] }) }) : recheck(result.key)
    await write.catch(() => {})
  }
}
