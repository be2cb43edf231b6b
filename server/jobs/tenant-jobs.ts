import type PgBoss from 'pg-boss'
import type { FastifyBaseLogger } from 'fastify'
import type { TenantScope } from '../context/tenant-scope.js'
import type { TenantContext } from '../context/tenant-context.js'
import type { RunAsTenant } from '../context/tenant-scopes.js'
import type { QueueService } from './queue-service.js'
import type { Tenant } from '../tenant.js'
import { misuse } from '../misuse.js'

/** What a tenant-aware job carries: the tenant it was sent from, and the app's data. */
interface Envelope<T> {
  tenantKey: string | null
  data: T
}

export interface JobContext {
  /** The pg-boss job (id, retry count…). */
  job: PgBoss.Job<unknown>
  /** The tenant's scope, or null for a job sent from a central context. */
  scope: TenantScope | null
}

export type JobHandler<T> = (data: T, context: JobContext) => Promise<void>

export interface DefineJobOptions {
  retryLimit?: number
  retryDelay?: number
  retryBackoff?: boolean
  /** Jobs worked at once by this process (default 5). */
  batchSize?: number
  /** Work jobs in this process (default true); false only defines the queue, for processes that only send. */
  work?: boolean
}

const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,100}$/

/**
 * The app's own jobs on the tenancy queue (the seeds' "queue jobs maintain
 * tenant context"). `send` inside a tenant's context records the tenant's
 * key; the worker runs the handler inside that tenant's context (its
 * EntityManager, logger, storage), on every retry too. A job whose tenant has
 * been deleted is cancelled at once (pg-boss state `cancelled`, never run,
 * never retried) and the reason is logged.
 */
export interface JobParts {
  queue: QueueService
  context: Pick<TenantContext, 'current' | 'exit'>
  /** A tenant by key, from the central database (not the cache: a job must not run for a deleted tenant). */
  find: (key: string) => Promise<Tenant | null>
  runAsTenant: RunAsTenant
  log: FastifyBaseLogger
}

export class TenantJobs {
  private readonly parts: JobParts
  private readonly workers: string[] = []

  constructor (parts: JobParts) {
    this.parts = parts
  }

  /** Creates queue `name` and (unless `work: false`) works it with `handler`. */
  async define<T> (name: string, handler: JobHandler<T>, options: DefineJobOptions = {}): Promise<void> {
    if (!QUEUE_NAME.test(name)) throw misuse.badJobName(name)
    const boss = await this.parts.queue.ensureQueue(name, {
      retryLimit: options.retryLimit ?? 3,
      retryDelay: options.retryDelay ?? 1,
      retryBackoff: options.retryBackoff ?? true
    })
    if (options.work === false) return
    const id = await boss.work<Envelope<T>>(name, { batchSize: options.batchSize ?? 5, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      // Jobs of a batch run side by side, each in its own tenant context.
      await Promise.all(jobs.map(async (job) => { await this.runOne(boss, name, job, handler) }))
    })
    this.workers.push(id)
  }

  /** Queues a job; sent inside a tenant's context, it will run in that tenant's context. Returns the job id. */
  async send<T> (name: string, data: T, options: PgBoss.SendOptions = {}): Promise<string> {
    const boss = await this.parts.queue.ensureQueue(name)
    const envelope: Envelope<T> = { tenantKey: this.parts.context.current()?.key ?? null, data }
    const id = await boss.send(name, envelope as object, options)
    if (id === null) throw misuse.jobNotQueued(name)
    for (const worker of this.workers) boss.notifyWorker(worker)
    return id
  }

  async close (): Promise<void> {
    if (!this.parts.queue.started) return
    const boss = await this.parts.queue.boss()
    for (const id of this.workers.splice(0)) await boss.offWork({ id })
  }

  private async runOne<T> (boss: PgBoss, name: string, job: PgBoss.Job<Envelope<T>>, handler: JobHandler<T>): Promise<void> {
    const { tenantKey, data } = job.data
    try {
      if (tenantKey === null) {
        await this.parts.context.exit(async () => { await handler(data, { job, scope: null }) })
        return
      }
      const tenant = await this.parts.find(tenantKey)
      if (tenant === null) {
        // Retrying cannot bring a deleted tenant back. pg-boss has no "fail
        // without retries": cancelling ends the job for good (the worker's own
        // completion afterwards finds it no longer active and does nothing).
        await boss.cancel(name, job.id)
        this.parts.log.warn({ job: job.id, queue: name, tenant: tenantKey }, `fastify-tenancy: tenant ${tenantKey} no longer exists; the job was cancelled, not run`)
        return
      }
      await this.parts.runAsTenant(tenant, async (scope) => { await handler(data, { job, scope }) })
    } catch (error) {
      // pg-boss keeps the failure in the job's output only: the log says it once per attempt, or nobody sees it.
      this.parts.log.warn({ err: error, job: job.id, queue: name, tenant: tenantKey }, `fastify-tenancy: job ${job.id} of queue ${name} failed${tenantKey === null ? '' : ` in tenant ${tenantKey}`}: ${(error as Error).message}; pg-boss retries it until its retryLimit`)
      await boss.fail(name, job.id, { message: (error as Error).message })
    }
  }
}
