import type { FastifyBaseLogger } from 'fastify'
import { mapLimit } from '../support/map-limit.js'
import { backoffMs, type RetryOptions } from './backoff.js'
import type { SyncChange } from './change.js'
import { FORWARD_QUEUE, SYNC_QUEUE, type DeliveryData, type ForwardData, type SyncJob, type SyncQueue } from './queue.js'

export interface SyncWorkParts {
  queue: SyncQueue
  /** Writes one change into one tenant's copy. */
  deliver: (change: SyncChange, tenant: string) => Promise<void>
  /** Forwards a tenant's outbox to the central database. */
  forward: (tenant: string) => Promise<void>
  log: FastifyBaseLogger
}

export interface SyncWorkSettings {
  concurrency: number
  batchSize: number
  retry: RetryOptions
}

/**
 * One go through syncing's queues: takes the jobs that are due (at most
 * `concurrency` of each queue, so a job is held only while it runs), runs
 * them in parallel, and ends them. A job that fails is tried again after
 * syncing's backoff; one unreachable tenant holds up only its own jobs.
 */
export class SyncWork {
  private readonly parts: SyncWorkParts
  private readonly settings: SyncWorkSettings

  constructor (parts: SyncWorkParts, settings: SyncWorkSettings) {
    this.parts = parts
    this.settings = settings
  }

  /** Runs what is due now (or everything waiting, `ignoreStartAfter`); says how many jobs it took and how many of them were done. */
  async run (ignoreStartAfter = false): Promise<{ took: number, done: number }> {
    const size = Math.min(this.settings.concurrency, this.settings.batchSize)
    const [deliveries, forwards] = await Promise.all([
      this.parts.queue.fetch<DeliveryData>(SYNC_QUEUE, size, ignoreStartAfter),
      this.parts.queue.fetch<ForwardData>(FORWARD_QUEUE, size, ignoreStartAfter)
    ])
    const done = await Promise.all([
      this.each(SYNC_QUEUE, deliveries, async (job) => { await this.parts.deliver(job.data, job.data.tenant as string) }, async (job, delay, error) => {
        this.parts.log.warn({ err: error, tenant: job.data.tenant, resource: job.data.resource, attempts: (job.data.attempts ?? 0) + 1 }, 'fastify-tenancy: a synced change could not be delivered; it will be tried again')
        await this.parts.queue.again(job, delay, error)
      }),
      this.each(FORWARD_QUEUE, forwards, async (job) => { await this.parts.forward(job.data.tenant) }, async (job, delay, error) => {
        this.parts.log.warn({ err: error, tenant: job.data.tenant, attempts: (job.data.attempts ?? 0) + 1 }, 'fastify-tenancy: synced changes of a tenant are kept in its outbox and will be tried again')
        await this.parts.queue.markForward(job.data.tenant, delay, (job.data.attempts ?? 0) + 1)
        await this.parts.queue.complete(FORWARD_QUEUE, [job.id])
      })
    ])
    return { took: deliveries.length + forwards.length, done: done[0] + done[1] }
  }

  private async each<T extends { attempts?: number }> (
    queue: string, jobs: Array<SyncJob<T>>, work: (job: SyncJob<T>) => Promise<void>, again: (job: SyncJob<T>, delayMs: number, error: Error) => Promise<void>
  ): Promise<number> {
    if (jobs.length === 0) return 0
    const done: string[] = []
    await mapLimit(jobs, this.settings.concurrency, async (job) => {
      try {
        await work(job)
        done.push(job.id)
      } catch (error) {
        // Should this fail too (the central database gone), the job expires and is taken again.
        await again(job, backoffMs((job.data.attempts ?? 0) + 1, this.settings.retry), error as Error).catch(() => {})
      }
    })
    await this.parts.queue.complete(queue, done)
    return done.length
  }
}
