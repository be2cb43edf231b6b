import type { Connection } from '@mikro-orm/core'
import type { FastifyBaseLogger } from 'fastify'
import type { CentralWriter } from './central-writer.js'
import type { AsTenant } from './copy-store.js'
import type { SyncEvent } from '../events/sync-events.js'
import { forwardChange } from './forwarder.js'
import type { SyncQueue } from './queue.js'
import type { SyncedResource } from './resource.js'
import { dropFromOutbox, OUTBOX_BATCH, readOutbox } from './tenant-outbox.js'

export interface ForwardingParts {
  resources: ReadonlyMap<string, SyncedResource>
  central: CentralWriter
  queue: SyncQueue
  /** A connection to a tenant's tables, or null when the tenant is gone. */
  lease: (tenantKey: string) => Promise<{ conn: Connection, release: () => void } | null>
  asTenant: AsTenant
  emit: (event: SyncEvent) => Promise<void>
  log: FastifyBaseLogger
  /** How long the instance that made a change has to forward it before any other may. */
  takeoverMs: number
}

/**
 * Brings the changes in tenants' outboxes to the central database, where each
 * gets its version and its deliveries to the other copies. The instance that
 * made a change forwards it right after its commit; a note queued before
 * that commit (`mark`) lets any running instance forward it should this one
 * stop first, and tries again with backoff when forwarding fails.
 */
export class TenantForwarding {
  private readonly parts: ForwardingParts
  /** One forward per tenant outbox at a time in this process. */
  private readonly running = new Map<string, Promise<void>>()
  /** When this process last queued a note per tenant: one waiting note covers the changes made before it is due. */
  private readonly marked = new Map<string, number>()
  /** Tenants whose note could not be queued (the central database out of reach): queued again by the loop. */
  private readonly unmarked = new Set<string>()

  constructor (parts: ForwardingParts) {
    this.parts = parts
  }

  /**
   * Queues the note that tenant `tenantKey`'s outbox has changes (called
   * before they commit). A tenant's write never fails for it: without the
   * central database the note is queued later by this process's loop.
   */
  async mark (tenantKey: string): Promise<void> {
    const now = Date.now()
    if (now - (this.marked.get(tenantKey) ?? -Infinity) < this.parts.takeoverMs / 2) return
    try {
      await this.parts.queue.markForward(tenantKey, this.parts.takeoverMs)
    } catch (error) {
      this.unmarked.add(tenantKey)
      this.parts.log.warn({ err: error, tenant: tenantKey }, 'fastify-tenancy: could not queue the forward of a tenant\'s synced changes; trying again')
      return
    }
    this.unmarked.delete(tenantKey)
    if (this.marked.size > 10_000) this.marked.clear()
    this.marked.set(tenantKey, now)
  }

  /** Queues the notes that could not be queued before. */
  async markAgain (): Promise<void> {
    for (const tenantKey of [...this.unmarked]) {
      this.marked.delete(tenantKey)
      await this.mark(tenantKey)
    }
  }

  /** After a commit: forwards now; a failure is left to the queued note. */
  async afterCommit (tenantKey: string): Promise<void> {
    await this.forward(tenantKey).catch((error: Error) => {
      this.parts.log.warn({ err: error, tenant: tenantKey }, 'fastify-tenancy: synced changes of a tenant are kept in its outbox and will be tried again')
    })
  }

  /** Forwards everything in tenant `tenantKey`'s outbox, after any forward of it under way here. */
  async forward (tenantKey: string): Promise<void> {
    const previous = this.running.get(tenantKey) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(async () => { await this.forwardNow(tenantKey) })
    this.running.set(tenantKey, next)
    try {
      await next
    } finally {
      if (this.running.get(tenantKey) === next) this.running.delete(tenantKey)
    }
  }

  private async forwardNow (tenantKey: string): Promise<void> {
    for (;;) {
      const rows = await this.withTenant(tenantKey, readOutbox)
      if (rows === null) return
      // No tenant connection is held while the central transaction runs, nor the other way round.
      // Forwarded rows leave the outbox together, once the batch ends or fails: one forwarded again
      // after a crash in between is skipped by the central inbox.
      const forwarded: unknown[] = []
      try {
        for (const { id, change } of rows) {
          const r = this.parts.resources.get(change.resource)
          if (r !== undefined) {
            const { events } = await this.parts.central.run(async (tx) => {
              const result = await forwardChange(tx.run, r, change)
              await tx.record(result.deliveries)
              return result
            })
            for (const event of events) await this.parts.emit(event)
          }
          forwarded.push(id)
        }
      } finally {
        if (forwarded.length > 0) await this.withTenant(tenantKey, async (conn) => { await dropFromOutbox(conn, forwarded) })
      }
      if (rows.length < OUTBOX_BATCH) return
    }
  }

  private async withTenant<R> (tenantKey: string, fn: (conn: Connection) => Promise<R>): Promise<R | null> {
    const held = await this.parts.lease(tenantKey)
    if (held === null) return null
    try {
      return await this.parts.asTenant(tenantKey, async () => await fn(held.conn))
    } finally {
      held.release()
    }
  }
}
