import type { Knex } from '@mikro-orm/postgresql'
import type { FastifyBaseLogger } from 'fastify'
import { mapLimit } from '../support/map-limit.js'
import type { SyncChange } from './change.js'
import type { SyncQueue } from './queue.js'

/** A delivery recorded in a central transaction, handed to `committed` once that transaction committed. */
export interface RecordedDelivery {
  id: string
  change: SyncChange
}

/**
 * How central changes reach tenant copies. Both kinds write one queued job
 * per change and tenant, in the change's own transaction, so a crash after
 * the commit loses nothing; they differ only in who delivers first.
 */
export interface Deliveries {
  /** Records deliveries (each names its `tenant`) in the running central transaction `trx`. */
  record: (trx: Knex.Transaction, changes: SyncChange[]) => Promise<RecordedDelivery[]>
  /** The transaction that recorded `recorded` committed. */
  committed: (recorded: RecordedDelivery[]) => Promise<void>
}

export interface DeliveryParts {
  queue: SyncQueue
  /** Writes one change into one tenant's copy. */
  deliver: (change: SyncChange, tenant: string) => Promise<void>
  /** Wakes this process's worker. */
  wake: () => void
  log: FastifyBaseLogger
}

export interface DeliverySettings {
  mode: 'inline' | 'queued'
  concurrency: number
  takeoverMs: number
}

/**
 * Inline: the instance that committed delivers at once, before the flush
 * resolves, then removes the jobs. Until `takeoverMs` has passed no worker
 * takes them, so a crash in between leaves them to any running worker, and a
 * delivery that fails is tried again by a worker with backoff.
 */
function inline (parts: DeliveryParts, settings: DeliverySettings): Deliveries {
  return {
    record: async (trx, changes) => {
      const ids = await parts.queue.insert(trx, changes, settings.takeoverMs)
      return changes.map((change, i) => ({ id: ids[i] as string, change }))
    },
    committed: async (recorded) => {
      const delivered: string[] = []
      await mapLimit(recorded, settings.concurrency, async ({ id, change }) => {
        try {
          await parts.deliver(change, change.tenant as string)
          delivered.push(id)
        } catch (error) {
          parts.log.warn({ err: error, tenant: change.tenant, resource: change.resource }, 'fastify-tenancy: a synced change could not be delivered; a worker will try it again')
        }
      })
      // A job left behind by a failure here is delivered again, which changes nothing.
      await parts.queue.remove(delivered).catch((error: Error) => {
        parts.log.warn({ err: error }, 'fastify-tenancy: delivered synced changes stay queued; a worker will find them applied')
      })
    }
  }
}

/** Queued: the jobs are the work; this process's worker is woken, any worker may take them. */
function queued (parts: DeliveryParts): Deliveries {
  return {
    record: async (trx, changes) => {
      const ids = await parts.queue.insert(trx, changes)
      return changes.map((change, i) => ({ id: ids[i] as string, change }))
    },
    committed: async () => { parts.wake() }
  }
}

/** The one place where the mode is looked at: the rest of syncing records and hands over through `Deliveries`. */
export function chooseDeliveries (parts: DeliveryParts, settings: DeliverySettings): Deliveries {
  return settings.mode === 'inline' ? inline(parts, settings) : queued(parts)
}
