import type { SyncChange } from './change.js'
import type { CentralRead } from './applier.js'
import { mapLimit } from '../lifecycle/each-tenant.js'
import type { CentralTables } from '../database/central-schema.js'

export interface RetryOptions {
  /** First wait after a failed delivery, in ms (default 1,000). */
  minDelayMs: number
  /** Longest wait between two tries, in ms (default 60,000). */
  maxDelayMs: number
}

/** Exponential backoff with some jitter, so tries from many instances spread out. */
export function backoffMs (attempts: number, retry: RetryOptions): number {
  const base = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** Math.max(0, attempts - 1))
  return Math.round(base * (0.8 + Math.random() * 0.4))
}

/** A claimed row is left alone by other instances for this long; a crash mid-delivery gives it back after it. */
const LEASE_SECONDS = 60

export interface CentralOutboxOptions {
  /** The central tables' names in SQL. */
  tables: CentralTables
  concurrency: number
  batchSize: number
  retry: RetryOptions
  onFailure: (error: Error, change: SyncChange, tenant: string, attempts: number) => void
}

/**
 * The central outbox of inline mode: one row per change and destination
 * tenant. Rows are claimed with a lease (`skip locked`, so instances share the
 * work), delivered in parallel with bounded concurrency, deleted once
 * delivered, and tried again later with backoff when a tenant database cannot
 * be reached: an unreachable tenant holds up only its own rows. No connection
 * is held while a delivery runs.
 */
export class CentralOutbox {
  private readonly execute: CentralRead
  private readonly deliver: (change: SyncChange, tenant: string) => Promise<void>
  private readonly options: CentralOutboxOptions

  constructor (execute: CentralRead, deliver: (change: SyncChange, tenant: string) => Promise<void>, options: CentralOutboxOptions) {
    this.execute = execute
    this.deliver = deliver
    this.options = options
  }

  /**
   * Delivers the rows `ids` (just committed), or every row that is due (`all`:
   * due or not; `after`: only rows past that id, so a pass over everything
   * tries each row once). Returns the ids it claimed.
   */
  async run (filter: { ids?: string[], all?: boolean, after?: string } = {}): Promise<string[]> {
    const claimed = await this.execute(
      `with due as (
         select id from ${this.options.tables.fastify_tenancy_sync_outbox}
         where destination is not null and (?::boolean or available_at <= now())
           and (?::jsonb is null or id in (select (jsonb_array_elements_text(?::jsonb))::bigint))
           and (?::bigint is null or id > ?::bigint)
         order by id limit ? for update skip locked)
       update ${this.options.tables.fastify_tenancy_sync_outbox} o set attempts = o.attempts + 1, available_at = now() + make_interval(secs => ?)
       from due where o.id = due.id
       returning o.id::text as id, o.change, o.destination::text as destination, o.attempts`,
      [filter.all === true || filter.ids !== undefined, filter.ids === undefined ? null : JSON.stringify(filter.ids), filter.ids === undefined ? null : JSON.stringify(filter.ids), filter.after ?? null, filter.after ?? null, this.options.batchSize, LEASE_SECONDS])
    if (claimed.length === 0) return []
    const done: string[] = []
    await mapLimit(claimed, this.options.concurrency, async (row) => {
      const change = (typeof row.change === 'string' ? JSON.parse(row.change) : row.change) as SyncChange
      try {
        await this.deliver(change, String(row.destination))
        done.push(String(row.id))
      } catch (error) {
        const attempts = Number(row.attempts)
        this.options.onFailure(error as Error, change, String(row.destination), attempts)
        await this.execute(`update ${this.options.tables.fastify_tenancy_sync_outbox} set available_at = now() + make_interval(secs => ?), last_error = ? where id = ?`,
          [backoffMs(attempts, this.options.retry) / 1000, String((error as Error).message).slice(0, 500), row.id]).catch(() => {})
      }
    })
    if (done.length > 0) await this.execute(`delete from ${this.options.tables.fastify_tenancy_sync_outbox} where id in (select (jsonb_array_elements_text(?::jsonb))::bigint)`, [JSON.stringify(done)])
    return claimed.map((row) => String(row.id))
  }

  /** Rows not delivered yet (due or waiting for a retry). */
  async pending (): Promise<number> {
    const rows = await this.execute(`select count(*)::int as n from ${this.options.tables.fastify_tenancy_sync_outbox} where destination is not null`, [])
    return Number(rows[0]?.n ?? 0)
  }
}
