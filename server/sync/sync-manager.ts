import type { Connection, EntityManager } from '@mikro-orm/core'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Knex } from '@mikro-orm/knex'
import type PgBoss from 'pg-boss'
import type { FastifyBaseLogger } from 'fastify'
import type { Tenant } from '../tenant.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { QueueService } from '../jobs/queue-service.js'
import { MisconfigurationError, NoTenantContextError, SyncTimeoutError, SyncUnknownGlobalIdError, SyncUnknownResourceError } from '../errors.js'
import { mapLimit } from '../lifecycle/each-tenant.js'
import type { SyncChange } from './change.js'
import { SyncApplier } from './applier.js'
import { bumpVersion, centralCapture, lockCentralRow, mappingEntities, tenantCapture, updateDeliveries } from './capture.js'
import { databaseCopyStore, inTransaction, type AsTenant, type CopyStore, type Run } from './copy-store.js'
import { CentralOutbox, backoffMs, type RetryOptions } from './central-outbox.js'
import { forwardChange } from './forwarder.js'
import type { SyncEvent } from './events.js'
import { resolveResource, type SyncedResource } from './resource.js'
import { inTransaction as bossInTransaction, SYNC_QUEUE, SYNC_QUEUE_OPTIONS } from './queue.js'
import type { SyncOptions } from './options.js'
import { centralTables, type CentralTables } from '../database/central-schema.js'

export type { SyncOptions } from './options.js'

/** The parts of the tenancy runtime that syncing uses. */
export interface SyncParts {
  /** The central MikroORM instance. */
  orm: MikroORM
  connections: Pick<TenantConnections, 'lease' | 'discover' | 'onOpen'>
  queue: QueueService
  /** A tenant by key (cached is fine: a deleted tenant's copy is skipped either way). */
  byKey: (key: string) => Promise<Tenant | null>
  /** Every tenant, for the look through outboxes at start. */
  select: () => Promise<Array<Pick<Tenant, 'key' | 'status'>>>
  targetOf: TargetOf
  /** The running code's tenant scope, for the guard on tenant entities. */
  scope: () => TenantScope | null
  log: FastifyBaseLogger
  /** Fires a sync event on `app.tenancy.events`. */
  emit: (event: SyncEvent) => Promise<void>
  /** Where tenant copies are written (default: each tenant's own database or schema). */
  copies?: CopyStore
  /**
   * Strategy `shared` (one pool for every tenant): runs tenant-side work as the
   * given tenant, so its statements name it; capture then takes the tenant of
   * each change from its context instead of from the pool.
   */
  asTenant?: AsTenant
}

const DEFAULTS = { concurrency: 16, batchSize: 100, pollIntervalMs: 1000, retry: { minDelayMs: 1000, maxDelayMs: 60_000 } }

/**
 * Resource syncing (`app.tenancy.sync`). Every synced change is recorded in
 * the same transaction as the change: a central change as one delivery per
 * tenant that has the resource (an outbox row inline, a pg-boss job queued);
 * a tenant change in that tenant's outbox, forwarded to the central database
 * after commit (where it gets its version and its deliveries). Deliveries run
 * in parallel with bounded concurrency; those that fail are retried in the
 * background with backoff, from start to close, with no call from the app.
 */
export class SyncManager {
  readonly mode: 'inline' | 'queued'
  readonly resources = new Map<string, SyncedResource>()
  private readonly parts: SyncParts
  private readonly options: SyncOptions
  private readonly applier: SyncApplier
  private readonly outbox: CentralOutbox
  private readonly concurrency: number
  private readonly retry: RetryOptions
  private boss: PgBoss | null = null
  private workerId: string | null = null
  /** Work under way (deliveries, forwards), awaited by settle() and close(). */
  private readonly inFlight = new Set<Promise<unknown>>()
  /** One forward per tenant outbox at a time in this process. */
  private readonly forwarding = new Map<string, Promise<void>>()
  /** Tenant outboxes that could not be forwarded, and when to try again. */
  private readonly retryTenants = new Map<string, { attempts: number, at: number }>()
  /** Outbox ids recorded by a flush, delivered once it commits (inline). */
  private readonly recorded = new WeakMap<EntityManager, string[]>()
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private pass: Promise<void> | null = null
  private pruned = 0
  /** Our central tables in SQL. */
  private readonly tables: CentralTables

  constructor (parts: SyncParts, options: SyncOptions) {
    this.parts = parts
    this.options = options
    this.tables = centralTables(parts.orm)
    this.mode = options.mode ?? 'queued'
    if (this.mode !== 'inline' && this.mode !== 'queued') throw new MisconfigurationError('sync.mode must be "inline" or "queued".')
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULTS.concurrency)
    this.retry = { minDelayMs: options.retry?.minDelayMs ?? DEFAULTS.retry.minDelayMs, maxDelayMs: options.retry?.maxDelayMs ?? DEFAULTS.retry.maxDelayMs }
    const tenantMeta = parts.connections.discover()
    const centralMeta = parts.orm.getMetadata()
    for (const definition of options.resources) {
      if (this.resources.has(definition.name)) throw new MisconfigurationError(`Two synced resources are named "${definition.name}".`)
      const c = centralMeta.find(definition.central.meta.className)
      const t = tenantMeta.find(definition.tenant.meta.className)
      if (c === undefined) throw new MisconfigurationError(`Synced resource "${definition.name}": ${definition.central.meta.className} is not a central entity (add it to centralEntities).`)
      if (t === undefined) throw new MisconfigurationError(`Synced resource "${definition.name}": ${definition.tenant.meta.className} is not in tenantEntities.`)
      this.resources.set(definition.name, resolveResource(definition, c, t, this.tables.schema))
    }
    const list = [...this.resources.values()]
    const read = async (sql: string, params: unknown[]): Promise<Array<Record<string, any>>> => await this.central().execute(sql, params as any[], 'all')
    const copies = parts.copies ?? databaseCopyStore(async (key) => await this.leaseTenant(key), parts.asTenant)
    this.applier = new SyncApplier(this.resources, copies, read, parts.emit)
    this.outbox = new CentralOutbox(read, async (change, tenant) => { await this.applier.deliver(change, tenant) }, {
      tables: this.tables,
      concurrency: this.concurrency,
      batchSize: options.batchSize ?? DEFAULTS.batchSize,
      retry: this.retry,
      onFailure: (error, change, tenant, attempts) => {
        parts.log.warn({ err: error, tenant, resource: change.resource, attempts }, 'fastify-tenancy: a synced change could not be delivered; it will be tried again')
      }
    })
    parts.orm.em.getEventManager().registerSubscriber(centralCapture(list, mappingEntities(list, Object.values(centralMeta.getAll())), {
      record: async (em, run, deliveries) => { await this.record(em, run, deliveries) },
      committed: async (em) => { await this.track(this.deliverRecorded(em)) }
    }))
    if (parts.asTenant !== undefined) {
      // One pool for every tenant: the running scope is the tenant of each change (the driver names it per statement).
      const scopeKey = (className: string): string => {
        const scope = parts.scope()
        if (scope === null) throw new NoTenantContextError(`Saving a synced ${className}`)
        return scope.tenant.key
      }
      parts.connections.onOpen((events) => {
        events.registerSubscriber(tenantCapture(list, () => scopeKey('resource'), {
          guard: (className, em) => {
            const key = scopeKey(className)
            // The EntityManager a lease gave for one tenant, used in another's context: refused as in the other strategies.
            const owner = (em as { tenantKey?: string }).tenantKey
            if (owner !== undefined && owner !== key) throw new MisconfigurationError(`An EntityManager of tenant ${owner} was used to save a ${className} in the context of tenant ${parts.scope()?.tenant.identifier ?? key}.`)
          },
          committed: async () => { const key = parts.scope()?.tenant.key; if (key !== undefined) await this.track(this.forward(key)) }
        }))
      })
    } else {
      parts.connections.onOpen((events, target) => {
        events.registerSubscriber(tenantCapture(list, target.key, {
          guard: (className) => {
            const scope = parts.scope()
            if (scope === null) throw new NoTenantContextError(`Saving a synced ${className}`)
            if (scope.tenant.key !== target.key) throw new MisconfigurationError(`An EntityManager of tenant ${target.key} was used to save a ${className} in the context of tenant ${scope.tenant.identifier}.`)
          },
          committed: async () => { await this.track(this.forward(target.key)) }
        }))
      })
    }
  }

  /** Starts the queue (queued mode) and the background delivery; looks once through tenant outboxes left behind. */
  async start (): Promise<void> {
    if (this.mode === 'queued') {
      this.boss = await this.parts.queue.ensureQueue(SYNC_QUEUE, { ...SYNC_QUEUE_OPTIONS, expireInSeconds: this.options.jobExpireSeconds ?? SYNC_QUEUE_OPTIONS.expireInSeconds })
      if (this.options.worker !== false) await this.startWorker()
    }
    this.schedule()
    if (this.options.recoverOnStart !== false) void this.track(this.recoverTenants().catch((error: Error) => { this.parts.log.warn({ err: error }, 'fastify-tenancy: could not look through tenant outboxes') }))
  }

  /** Works queued changes in this process (a separate worker process calls this on its own app). */
  async startWorker (): Promise<void> {
    const boss = this.queue()
    this.workerId = await boss.work<SyncChange>(SYNC_QUEUE, { batchSize: this.options.batchSize ?? DEFAULTS.batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      await mapLimit(jobs, this.concurrency, async (job) => {
        try {
          await this.applier.deliver(job.data, job.data.tenant as string)
        } catch (error) {
          // Only this job goes back for a retry (pg-boss backs off); the batch's others complete.
          await boss.fail(SYNC_QUEUE, job.id, { message: (error as Error).message })
        }
      })
    })
  }

  /** Stops the background delivery and the worker; work under way finishes first. */
  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    await this.pass
    await Promise.allSettled([...this.inFlight])
    if (this.workerId !== null) await this.boss?.offWork({ id: this.workerId })
    this.workerId = null
    this.boss = null
  }

  /** The pg-boss instance (queued mode), for the app's own tenant-aware jobs. */
  queue (): PgBoss {
    if (this.boss === null) throw new MisconfigurationError('The sync queue is not running: use sync.mode "queued".')
    return this.boss
  }

  /**
   * Attaches a resource to a tenant: the mapping row is added and the whole
   * central row copied into the tenant's database. An unknown global id is
   * refused with FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID and writes nothing.
   */
  async attach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    const r = this.resource(resourceName)
    await this.centralWork(async (em, run) => {
      // The central row first (the lock order of every writer), held until the attach commits.
      const found = await lockCentralRow(run, r, globalId, 'share')
      if (found.length === 0) throw new SyncUnknownGlobalIdError(r.name, globalId)
      const [sql, params] = r.mapping.insertSql(tenant.key, globalId)
      await run(sql, params)
      // Attaching again still refreshes the copy.
      await this.record(em, run, [{ resource: r.name, globalId, op: 'attach', origin: null, tenant: tenant.key }])
    })
  }

  /** Detaches a resource from a tenant: the mapping row goes, and so does the tenant's copy. */
  async detach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    const r = this.resource(resourceName)
    await this.centralWork(async (em, run) => {
      await lockCentralRow(run, r, globalId, 'share')
      const [sql, params] = r.mapping.deleteSql(tenant.key, globalId)
      if ((await run(sql, params)).length === 0) return
      await this.record(em, run, [{ resource: r.name, globalId, op: 'detach', origin: null, tenant: tenant.key }])
    })
  }

  /** Sends the central row's synced attributes to every copy again (mends a copy changed behind the syncer's back). */
  async resync (resourceName: string, globalId: string): Promise<void> {
    const r = this.resource(resourceName)
    await this.centralWork(async (em, run) => {
      if ((await lockCentralRow(run, r, globalId)).length === 0) return
      const version = await bumpVersion(run, r, globalId)
      const deliveries = await updateDeliveries(run, r, globalId, null, version)
      // The version is newer than any copy's; an unchanged copy still writes nothing.
      await this.record(em, run, deliveries)
    })
  }

  /** Delivers everything left behind now, backoff or not: the central outbox and every tenant's outbox. */
  async recover (concurrency = 4): Promise<void> {
    await this.recoverTenants(concurrency)
    if (this.mode !== 'inline') return
    // Each row once, in id order: a row that fails again (its tenant is down) waits for its backoff, not another pass.
    let after: string | undefined
    for (;;) {
      const claimed = await this.outbox.run({ all: true, after })
      if (claimed.length === 0) return
      after = claimed.reduce((a, b) => BigInt(a) >= BigInt(b) ? a : b)
    }
  }

  /** Waits until changes handed over are applied: nothing in flight, the outbox (inline) or the queue (queued) empty. For tests and shutdown. */
  async settle (timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      await Promise.allSettled([...this.inFlight])
      if (this.inFlight.size === 0 && this.retryTenants.size === 0 && await this.waiting() === 0) return
      this.wake()
      await this.backgroundPass()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new SyncTimeoutError(timeoutMs)
  }

  /** Removes a deleted tenant from every resource's mapping. */
  async forgetTenant (tenantKey: string): Promise<void> {
    const tables = new Set<string>()
    await this.centralWork(async (_em, run) => {
      for (const r of this.resources.values()) {
        const [sql, params] = r.mapping.forgetTenantSql(tenantKey)
        const key = `${sql} ${JSON.stringify(params)}`
        if (tables.has(key)) continue
        tables.add(key)
        await run(sql, params)
      }
    })
  }

  private async waiting (): Promise<number> {
    if (this.boss === null) return await this.outbox.pending()
    // Jobs created, waiting for a retry or running.
    return await this.boss.getQueueSize(SYNC_QUEUE, { before: 'completed' })
  }

  private resource (name: string): SyncedResource {
    const r = this.resources.get(name)
    if (r === undefined) throw new SyncUnknownResourceError(name)
    return r
  }

  private central (): Connection {
    return this.parts.orm.em.getConnection()
  }

  /** Runs `fn` in a central transaction; what it recorded is delivered after the commit. */
  private async centralWork (fn: (em: EntityManager, run: Run) => Promise<void>): Promise<void> {
    const em = this.parts.orm.em.fork({ clear: true, useContext: false })
    let done: EntityManager | null = null
    await em.transactional(async (tem) => {
      const conn = tem.getConnection()
      const trx = tem.getTransactionContext()
      await fn(tem, async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx))
      done = tem
    })
    if (done !== null) await this.track(this.deliverRecorded(done))
  }

  /** Records deliveries in the running central transaction: queued jobs, or outbox rows (their ids kept for after the commit). */
  private async record (em: EntityManager, run: Run, deliveries: SyncChange[]): Promise<void> {
    if (deliveries.length === 0) return
    if (this.boss !== null) {
      const trx = em.getTransactionContext() as Knex.Transaction
      await this.boss.insert(deliveries.map((data) => ({ name: SYNC_QUEUE, data })), { db: bossInTransaction(trx) })
      return
    }
    const rows = await run(`insert into ${this.tables.fastify_tenancy_sync_outbox} (change, destination)
      select e, (e->>'tenant')::uuid from jsonb_array_elements(?::jsonb) as e returning id::text as id`, [JSON.stringify(deliveries)])
    const ids = this.recorded.get(em) ?? []
    ids.push(...rows.map((row) => String(row.id)))
    this.recorded.set(em, ids)
  }

  /** After a commit: inline, delivers what the transaction recorded; queued, wakes the worker. */
  private async deliverRecorded (em: EntityManager): Promise<void> {
    if (this.boss !== null) { this.wake(); return }
    const ids = this.recorded.get(em)
    this.recorded.delete(em)
    if (ids === undefined || ids.length === 0) return
    for (let i = 0; i < ids.length; i += this.options.batchSize ?? DEFAULTS.batchSize) {
      await this.outbox.run({ ids: ids.slice(i, i + (this.options.batchSize ?? DEFAULTS.batchSize)) })
    }
  }

  /** Forwards a tenant's outbox to the central database (one forward per tenant at a time); a failure is retried in the background. */
  private async forward (tenantKey: string): Promise<void> {
    const previous = this.forwarding.get(tenantKey) ?? Promise.resolve()
    const next = previous.then(async () => { await this.forwardNow(tenantKey) }).then(() => {
      this.retryTenants.delete(tenantKey)
    }, (error: Error) => {
      const attempts = (this.retryTenants.get(tenantKey)?.attempts ?? 0) + 1
      this.retryTenants.set(tenantKey, { attempts, at: Date.now() + backoffMs(attempts, this.retry) })
      this.parts.log.warn({ err: error, tenant: tenantKey, attempts }, 'fastify-tenancy: synced changes of a tenant are kept in its outbox and will be tried again')
    })
    this.forwarding.set(tenantKey, next)
    await next
    if (this.forwarding.get(tenantKey) === next) this.forwarding.delete(tenantKey)
  }

  private async forwardNow (tenantKey: string): Promise<void> {
    for (;;) {
      const held = await this.leaseTenant(tenantKey)
      if (held === null) return
      let rows: Array<Record<string, any>>
      try {
        rows = await this.asTenant(tenantKey, async () => await held.conn.execute('select id, change from fastify_tenancy_sync_outbox order by id limit 50', [], 'all'))
      } finally {
        held.release()
      }
      // No tenant connection is held while the central transaction runs, nor the other way round.
      // Forwarded rows leave the outbox together, once the batch ends or fails: one forwarded again
      // after a crash in between is skipped by the central inbox.
      const forwarded: unknown[] = []
      try {
        for (const row of rows) {
          const change = (typeof row.change === 'string' ? JSON.parse(row.change) : row.change) as SyncChange
          const r = this.resources.get(change.resource)
          if (r !== undefined) {
            let events: SyncEvent[] = []
            await this.centralWork(async (em, run) => {
              const result = await forwardChange(run, r, change)
              events = result.events
              await this.record(em, run, result.deliveries)
            })
            for (const event of events) await this.parts.emit(event)
          }
          forwarded.push(row.id)
        }
      } finally {
        if (forwarded.length > 0) await this.dropForwarded(tenantKey, forwarded)
      }
      if (rows.length < 50) return
    }
  }

  private async dropForwarded (tenantKey: string, ids: unknown[]): Promise<void> {
    const held = await this.leaseTenant(tenantKey)
    if (held === null) return
    try {
      await this.asTenant(tenantKey, async () => await held.conn.execute(`delete from fastify_tenancy_sync_outbox where id in (${ids.map(() => '?').join(', ')})`, ids, 'run'))
    } finally {
      held.release()
    }
  }

  private async recoverTenants (concurrency = 4): Promise<void> {
    const tenants = (await this.parts.select()).filter((t) => t.status === 'active' || t.status === 'suspended')
    await mapLimit(tenants, concurrency, async (t) => { if (!this.closed) await this.forward(t.key) })
  }

  private async leaseTenant (key: string): Promise<{ conn: Connection, release: () => void } | null> {
    const tenant = await this.parts.byKey(key)
    if (tenant === null) return null
    const lease = this.parts.connections.lease(this.parts.targetOf(tenant))
    return { conn: lease.em.getConnection(), release: lease.release }
  }

  private async asTenant<R> (key: string, fn: () => Promise<R>): Promise<R> {
    return this.parts.asTenant === undefined ? await fn() : await this.parts.asTenant(key, fn)
  }

  private async track<T> (work: Promise<T>): Promise<T> {
    this.inFlight.add(work)
    try {
      return await work
    } finally {
      this.inFlight.delete(work)
    }
  }

  /** The background delivery: outbox rows due again (inline) and tenant outboxes whose forward failed. */
  private schedule (): void {
    if (this.closed) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.backgroundPass().finally(() => { this.schedule() })
    }, this.options.pollIntervalMs ?? DEFAULTS.pollIntervalMs)
    this.timer.unref()
  }

  private async backgroundPass (): Promise<void> {
    if (this.pass !== null) return await this.pass
    this.pass = (async () => {
      try {
        if (this.mode === 'inline') while (!this.closed && (await this.outbox.run()).length >= (this.options.batchSize ?? DEFAULTS.batchSize));
        const now = Date.now()
        const due = [...this.retryTenants].filter(([, s]) => s.at <= now).map(([key]) => key)
        await mapLimit(due, this.concurrency, async (key) => { await this.forward(key) })
        // The inbox only has to outlive a retry: a week is plenty; pruned now and then, not on every pass.
        if (Date.now() - this.pruned > 600_000) {
          this.pruned = Date.now()
          await this.central().execute(`delete from ${this.tables.fastify_tenancy_sync_inbox} where received_at < now() - interval '7 days'`, [], 'run')
        }
      } catch (error) {
        this.parts.log.warn({ err: error }, 'fastify-tenancy: background delivery of synced changes failed; it will run again')
      } finally {
        this.pass = null
      }
    })()
    await this.pass
  }

  private wake (): void {
    if (this.workerId !== null) this.boss?.notifyWorker(this.workerId)
  }
}

export { inTransaction }
