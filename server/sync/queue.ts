import { v7 as uuidv7 } from 'uuid'
import type PgBoss from 'pg-boss'
import type { Knex } from '@mikro-orm/postgresql'
import type { QueueService } from '../jobs/queue-service.js'
import type { SyncChange } from './change.js'

/** The pg-boss queue of deliveries: one job per change and tenant it is for. */
export const SYNC_QUEUE = 'fastify-tenancy-sync'
/** The pg-boss queue of forwards: "tenant X has changes in its outbox", at most one waiting per tenant. */
export const FORWARD_QUEUE = 'fastify-tenancy-sync-forward'

/** A delivery's data: the change, and how many tries failed so far. */
export type DeliveryData = SyncChange & { attempts?: number }
/** A forward's data. */
export interface ForwardData { tenant: string, attempts?: number }

export type SyncJob<T> = PgBoss.Job<T>

/**
 * pg-boss speaks `$1` placeholders through `executeSql`; this runs its SQL
 * in a knex transaction instead, so a job is inserted in the same
 * transaction as the change that caused it.
 */
export function inTransaction (trx: Knex.Transaction): PgBoss.Db {
  return {
    executeSql: async (text: string, values: unknown[] = []) => {
      const bindings: unknown[] = []
      const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
        bindings.push(values[Number(n) - 1] ?? null)
        return '?'
      })
      const result = await trx.raw(sql, bindings as any[]) as { rows: any[] }
      return { rows: result.rows }
    }
  }
}

/**
 * Syncing's two queues on the app's pg-boss. Retries after a failure are new
 * jobs that wait out syncing's own backoff; pg-boss retries a job only when
 * it expired in a worker that died (at once: no delay, no backoff).
 */
export class SyncQueue {
  private readonly queues: QueueService
  private readonly expireSeconds: number
  private started: Promise<PgBoss> | null = null

  constructor (queues: QueueService, expireSeconds: number) {
    this.queues = queues
    this.expireSeconds = expireSeconds
  }

  /** pg-boss, with both queues made (a job sent to a missing queue is dropped). */
  async boss (): Promise<PgBoss> {
    this.started ??= (async () => {
      await this.queues.ensureQueue(SYNC_QUEUE)
      return await this.queues.ensureQueue(FORWARD_QUEUE, { policy: 'short' })
    })()
    try {
      return await this.started
    } catch (error) {
      this.started = null
      throw error
    }
  }

  /** Inserts deliveries in central transaction `trx`, taken by workers once `delayMs` passed; returns their ids. */
  async insert (trx: Knex.Transaction, changes: DeliveryData[], delayMs = 0): Promise<string[]> {
    const boss = await this.boss()
    const jobs = changes.map((data) => this.job(SYNC_QUEUE, data, delayMs))
    await boss.insert(jobs, { db: inTransaction(trx) })
    return jobs.map((job) => job.id as string)
  }

  /** Says that tenant `tenant` has changes to forward, from `delayMs` on (nothing new when one is waiting already). */
  async markForward (tenant: string, delayMs: number, attempts = 0): Promise<void> {
    const boss = await this.boss()
    await boss.insert([{ ...this.job(FORWARD_QUEUE, { tenant, attempts }, delayMs), singletonKey: tenant }])
  }

  /** Tries a failed delivery again once `delayMs` passed: a new job, then the failed one ends (a crash in between only tries twice). */
  async again (job: SyncJob<DeliveryData>, delayMs: number, error: Error): Promise<void> {
    const boss = await this.boss()
    const next = this.job(SYNC_QUEUE, { ...job.data, attempts: (job.data.attempts ?? 0) + 1 }, delayMs)
    await boss.insert([next])
    await boss.complete(SYNC_QUEUE, job.id, { retriedAs: next.id, error: error.message.slice(0, 500) })
  }

  /** Jobs of `queue` that are due (or all that wait, with `ignoreStartAfter`), marked active. */
  async fetch<T> (queue: string, batchSize: number, ignoreStartAfter = false): Promise<Array<SyncJob<T>>> {
    return await (await this.boss()).fetch<T>(queue, { batchSize, ignoreStartAfter })
  }

  async complete (queue: string, ids: string[]): Promise<void> {
    if (ids.length > 0) await (await this.boss()).complete(queue, ids)
  }

  /** Removes deliveries that were delivered before any worker took them (inline). */
  async remove (ids: string[]): Promise<void> {
    if (ids.length > 0) await (await this.boss()).deleteJob(SYNC_QUEUE, ids)
  }

  /** Jobs of both queues not done yet (waiting, due again later, or running). */
  async pending (): Promise<number> {
    const boss = await this.boss()
    const sizes = await Promise.all([SYNC_QUEUE, FORWARD_QUEUE].map(async (name) => await boss.getQueueSize(name, { before: 'completed' })))
    return sizes.reduce((a, b) => a + b, 0)
  }

  /** Hands the jobs of workers that died (expired while active) back to their queues now. */
  async expire (): Promise<void> {
    await (await this.boss()).expire()
  }

  private job<T extends object> (name: string, data: T, delayMs: number): PgBoss.JobInsert<T> & { id: string } {
    return {
      id: uuidv7(),
      name,
      data,
      // Relative: pg-boss adds it to the database's clock, so instances' clocks do not matter.
      ...(delayMs > 0 ? { startAfter: `${Math.ceil(delayMs) / 1000} seconds` } : {}),
      retryLimit: 1_000_000,
      retryDelay: 0,
      retryBackoff: false,
      expireInSeconds: this.expireSeconds
    }
  }
}
