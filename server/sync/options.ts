import type { SyncedResourceDefinition } from './resource.js'

/** The `sync` option of the plugin. */
export interface SyncOptions {
  resources: SyncedResourceDefinition[]
  /** `inline`: changes reach the other copies before the flush resolves. `queued`: a pg-boss job carries each (default). */
  mode?: 'inline' | 'queued'
  /** Run a worker for queued changes in this process (default true). */
  worker?: boolean
  /** Seconds a worker may hold a change before it is given to another worker (default 120): a worker that died loses its jobs after this. */
  jobExpireSeconds?: number
  /** Most tenant databases written at once by one fan-out or one batch of jobs (default 16, and never more than half of `database.maxConnections`). */
  concurrency?: number
  /** Changes taken at once from the outbox or the queue (default 100). */
  batchSize?: number
  /** Backoff of changes that could not be delivered (a tenant database down): first wait and longest wait, in ms (defaults 1,000 and 60,000). */
  retry?: { minDelayMs?: number, maxDelayMs?: number }
  /** How often the background delivery looks for changes due again, in ms (default 1,000). */
  pollIntervalMs?: number
  /** At start, look once through every tenant's outbox for changes a crash left behind (default true). */
  recoverOnStart?: boolean
}
