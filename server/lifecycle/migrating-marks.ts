import type pg from 'pg'
import type { SqlExecutor } from '../providers/provider.js'
import type { CentralListener } from '../database/central-listener.js'
import { LockSpace, lockId, withAdvisoryLock, type HeldLock, type LockKey } from '../database/advisory-locks.js'

/** The channel on which a migration's start and end are announced (payload `migrating:<id>` or `migrated:<id>`). */
export const MIGRATING_CHANNEL = 'fastify_tenancy_migrating'

export interface MigratingMarksOptions {
  /** Statements on the central database (announcements, and whether a mark's lock is still held). */
  execute: SqlExecutor
  /** Where the lock that a mark lives by is taken: warm connections to the central database. */
  lockSource: pg.Pool | string
  /** The instance's one LISTEN connection (null: marks made elsewhere are not heard). */
  listener: CentralListener | null
  /** How often a waiting request checks that the migration it waits for is still alive, in ms (default 250). */
  checkMs?: number
}

/**
 * "This tenant is being migrated", across instances. The migrate path holds
 * an advisory lock on the central database for as long as it migrates one
 * tenant (a transaction-level lock on a connection of its own, so a crash of
 * the migrating process frees it) and announces the start and the end on a
 * channel every instance follows; requests of a marked tenant wait for the
 * end. A mark whose end was never heard (a crash, a lost notification) is
 * dropped as soon as a waiting request finds its lock free.
 */
export class MigratingMarks {
  private readonly options: MigratingMarksOptions
  /** Ids marked on this instance, with the requests waiting for each. */
  private readonly marked = new Map<string, Set<() => void>>()

  constructor (options: MigratingMarksOptions) {
    this.options = options
    options.listener?.subscribe(MIGRATING_CHANNEL, {
      onNotify: (payload) => {
        if (payload === undefined) return
        const at = payload.indexOf(':')
        const what = payload.slice(0, at)
        const id = payload.slice(at + 1)
        if (what === 'migrating') this.mark(id)
        else if (what === 'migrated') this.unmark(id)
      }
    })
  }

  /** True while `id` (a tenant's key, or `*` for the shared tables) is being migrated, as this instance knows. */
  has (id: string): boolean {
    return this.marked.has(id)
  }

  /**
   * Runs `fn` (one tenant's migrate or rollback) with `id` marked, on every
   * instance; `settle` runs before the mark is cleared, so a request that
   * waited for the end finds the outcome recorded. Under a lock the caller
   * already holds (`held`: the tenant's lifecycle lock) the mark's lock is
   * taken in that lock's transaction, not on a connection of its own: a
   * rollout at concurrency K then holds K lock connections, not 2K.
   */
  async during<T> (id: string, fn: () => Promise<T>, settle: (ok: boolean) => Promise<void>, held?: HeldLock): Promise<T> {
    if (held !== undefined) {
      await held.also(migratingLock(id))
      return await this.markedDuring(id, fn, settle)
    }
    return await withAdvisoryLock(this.options.lockSource, migratingLock(id), async () => await this.markedDuring(id, fn, settle))
  }

  /** `fn` with `id` marked and announced; the caller holds the mark's lock. */
  private async markedDuring<T> (id: string, fn: () => Promise<T>, settle: (ok: boolean) => Promise<void>): Promise<T> {
    this.mark(id)
    await this.announce('migrating', id)
    let ok = false
    try {
      const result = await fn()
      ok = true
      return result
    } finally {
      try {
        await settle(ok)
      } finally {
        this.unmark(id)
        // Not heard elsewhere (the listener down): their waiting requests find the lock free once this commits.
        await this.announce('migrated', id).catch(() => {})
      }
    }
  }

  /**
   * Waits until `id`'s migration ends (true) or `ms` pass (false). Each
   * `checkMs` it asks whether the migrating session still holds its lock: a
   * session that ended (a crash) leaves no mark behind.
   */
  async wait (id: string, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms
    const checkMs = this.options.checkMs ?? 250
    while (this.marked.has(id)) {
      const left = deadline - performance.now()
      if (left <= 0) return false
      await this.nextEnd(id, Math.min(left, checkMs))
      // The central database not answering proves nothing: the request goes on waiting.
      if (this.marked.has(id) && !await this.held(id).catch(() => true)) this.unmark(id)
    }
    return true
  }

  private async nextEnd (id: string, ms: number): Promise<void> {
    const waiters = this.marked.get(id)
    if (waiters === undefined) return
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(timer); waiters.delete(done); resolve() }
      const timer = setTimeout(done, ms)
      waiters.add(done)
    })
  }

  private mark (id: string): void {
    if (!this.marked.has(id)) this.marked.set(id, new Set())
  }

  private unmark (id: string): void {
    const waiters = this.marked.get(id)
    this.marked.delete(id)
    if (waiters !== undefined) for (const wake of [...waiters]) wake()
  }

  private async announce (what: 'migrating' | 'migrated', id: string): Promise<void> {
    await this.options.execute(`select pg_notify('${MIGRATING_CHANNEL}', ?)`, [`${what}:${id}`])
  }

  /** Whether some session holds `id`'s migrating lock on the central database now. */
  private async held (id: string): Promise<boolean> {
    const [space, n] = migratingLock(id)
    const rows = await this.options.execute(`select exists (select 1 from pg_catalog.pg_locks where locktype = 'advisory' and granted
      and database = (select oid from pg_catalog.pg_database where datname = current_database())
      and classid = ?::bigint::oid and objid = ?::bigint::oid and objsubid = 2) as held`, [space >>> 0, n >>> 0])
    return rows[0]?.held === true
  }
}

/** The lock a migration of `id` holds. */
export function migratingLock (id: string): LockKey {
  return [LockSpace.migrating, lockId(id)]
}
