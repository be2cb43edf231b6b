import type { Connection, EntityManager } from '@mikro-orm/core'
import type PgBoss from 'pg-boss'
import type { Knex } from '@mikro-orm/knex'
import type { FastifyBaseLogger } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { QueueService } from '../jobs/queue-service.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { Tenant } from '../tenant.js'
import { MisconfigurationError, NoTenantContextError } from '../errors.js'
import { mapLimit } from '../lifecycle/each-tenant.js'
import type { SyncChange } from './change.js'
import { SyncApplier } from './applier.js'
import { centralCapture, tenantCapture, type CaptureHooks } from './capture.js'
import { ident, resolveResource, type SyncedResource, type SyncedResourceDefinition } from './resource.js'
import { inTransaction, SYNC_QUEUE, SYNC_QUEUE_OPTIONS } from './queue.js'

export interface SyncOptions {
  resources: SyncedResourceDefinition[]
  /** `inline`: changes reach the other copies before the flush resolves. `queued`: a pg-boss job carries them (default). */
  mode?: 'inline' | 'queued'
  /** Run a worker for queued changes in this process (default true). */
  worker?: boolean
  /** Seconds a worker may hold a change before it is given to another worker (default 120): a worker that died loses its jobs after this. */
  jobExpireSeconds?: number
}

type Run = (sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>

/**
 * Resource syncing (`app.tenancy.sync`). Every synced change is recorded in
 * the same transaction as the change: a pg-boss job for central changes in
 * queued mode, otherwise an outbox row in the database that changed. After
 * the commit the outbox is delivered (applied inline, or handed to the
 * queue); an outbox left behind by a crash is delivered by `recover()`.
 */
/** What syncing needs: the central database, tenant connections, the queue, and tenant lookups. */
export interface SyncParts {
  orm: MikroORM
  connections: Pick<TenantConnections, 'lease' | 'discover' | 'onOpen'>
  queue: QueueService
  byKey: (key: string) => Promise<Tenant | null>
  /** Every tenant, from the central database. */
  select: () => Promise<Tenant[]>
  targetOf: TargetOf
  scope: () => TenantScope | null
  log: FastifyBaseLogger
}

export class SyncManager {
  readonly mode: 'inline' | 'queued'
  readonly resources = new Map<string, SyncedResource>()
  private readonly parts: SyncParts
  private readonly options: SyncOptions
  private readonly applier: SyncApplier
  private boss: PgBoss | null = null
  private workerId: string | null = null
  private readonly draining = new Map<string, Promise<void>>()

  constructor (parts: SyncParts, options: SyncOptions) {
    this.parts = parts
    this.options = options
    this.mode = options.mode ?? 'queued'
    if (this.mode !== 'inline' && this.mode !== 'queued') throw new MisconfigurationError('sync.mode must be "inline" or "queued".')
    const tenantMeta = parts.connections.discover()
    const centralMeta = parts.orm.getMetadata()
    for (const definition of options.resources) {
      const c = centralMeta.find(definition.central.meta.className)
      const t = tenantMeta.find(definition.tenant.meta.className)
      if (c === undefined) throw new MisconfigurationError(`Synced resource "${definition.name}": ${definition.central.meta.className} is not a central entity.`)
      if (t === undefined) throw new MisconfigurationError(`Synced resource "${definition.name}": ${definition.tenant.meta.className} is not in tenantEntities.`)
      this.resources.set(definition.name, resolveResource(definition, c, t))
    }
    this.applier = new SyncApplier(parts, this.resources)
    const list = [...this.resources.values()]
    const pivots = new Map<string, SyncedResource>()
    for (const r of list) {
      const pivotMeta = centralMeta.getAll()
      for (const meta of Object.values(pivotMeta)) if (meta.tableName === r.pivot.table) pivots.set(meta.className, r)
    }
    parts.orm.em.getEventManager().registerSubscriber(centralCapture(list, pivots, this.hooks(null)))
    parts.connections.onOpen((events, target) => {
      events.registerSubscriber(tenantCapture(list, () => target.key, this.hooks(target.key)))
    })
  }

  async start (): Promise<void> {
    if (this.mode !== 'queued') return
    this.boss = await this.parts.queue.ensureQueue(SYNC_QUEUE, { ...SYNC_QUEUE_OPTIONS, expireInSeconds: this.options.jobExpireSeconds ?? SYNC_QUEUE_OPTIONS.expireInSeconds })
    if (this.options.worker !== false) await this.startWorker()
  }

  /** Works queued changes in this process (a separate worker process calls this on its own app). */
  async startWorker (): Promise<void> {
    const boss = this.queue()
    this.workerId = await boss.work<SyncChange>(SYNC_QUEUE, { batchSize: 20, pollingIntervalSeconds: 0.5 }, async (jobs) => {
      for (const job of jobs) {
        try {
          await this.applier.apply(job.data)
        } catch (error) {
          // Only this job goes back for a retry; the batch's others complete.
          await boss.fail(SYNC_QUEUE, job.id, { message: (error as Error).message })
        }
      }
    })
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.draining.values()])
    if (this.workerId !== null) await this.boss?.offWork({ id: this.workerId })
    this.boss = null
  }

  /** The pg-boss instance (queued mode), for the app's own tenant-aware jobs. */
  queue (): PgBoss {
    if (this.boss === null) throw new MisconfigurationError('The sync queue is not running: use sync.mode "queued".')
    return this.boss
  }

  /** Attaches a resource to a tenant: the pivot row is added and the whole central row copied into the tenant's database. */
  async attach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    await this.pivot(resourceName, globalId, tenant, 'attach')
  }

  /** Detaches a resource from a tenant: the pivot row goes, and so does the tenant's copy. */
  async detach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    await this.pivot(resourceName, globalId, tenant, 'detach')
  }

  /** Sends the central row's synced attributes to every copy again. */
  async resync (resourceName: string, globalId: string): Promise<void> {
    const r = this.resource(resourceName)
    await this.central(async (em, run) => {
      const rows = await run(`select ${r.central.syncedColumns.map(ident).join(', ')} from ${ident(r.central.table)} where ${ident(r.central.globalIdColumn)} = ?`, [globalId])
      if (rows[0] === undefined) return
      const version = await this.nextVersion()
      await run(`insert into fastify_tenancy_sync_state (resource, global_id, version) values (?, ?, ?)
        on conflict (resource, global_id) do update set version = excluded.version`, [r.name, globalId, version])
      await this.record(em, run, { resource: r.name, globalId, op: 'update', origin: null, values: rows[0], version })
    })
    await this.drain(null)
  }

  /** Delivers every outbox left behind (after a crash): the central one and each tenant's. */
  async recover (concurrency = 4): Promise<void> {
    await this.drain(null)
    const tenants = (await this.parts.select()).filter((t) => t.status === 'active' || t.status === 'suspended')
    await mapLimit(tenants, concurrency, async (t) => { await this.drain(t.key) })
  }

  /** Waits until changes already handed over are applied (queued mode: the queue is empty; tests and shutdown). */
  async settle (timeoutMs = 30_000): Promise<void> {
    await Promise.allSettled([...this.draining.values()])
    if (this.boss === null) return
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const left = await this.parts.orm.em.getConnection().execute(
        `select count(*)::int as n from ${ident(this.parts.queue.schema)}.job where name = ? and state < 'completed'`, [SYNC_QUEUE], 'all')
      if (Number(left[0]?.n ?? 0) === 0) return
      if (this.workerId !== null) this.boss.notifyWorker(this.workerId)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error('Synced changes are still queued after the timeout.')
  }

  private resource (name: string): SyncedResource {
    const r = this.resources.get(name)
    if (r === undefined) throw new MisconfigurationError(`No synced resource is named "${name}".`)
    return r
  }

  private async pivot (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>, op: 'attach' | 'detach'): Promise<void> {
    const r = this.resource(resourceName)
    await this.central(async (em, run) => {
      const rows = op === 'attach'
        ? await run(`insert into ${ident(r.pivot.table)} (${ident(r.pivot.tenantColumn)}, ${ident(r.pivot.globalIdColumn)}) values (?, ?) on conflict do nothing returning 1`, [tenant.key, globalId])
        : await run(`delete from ${ident(r.pivot.table)} where ${ident(r.pivot.tenantColumn)} = ? and ${ident(r.pivot.globalIdColumn)} = ? returning 1`, [tenant.key, globalId])
      // Attaching again still refreshes the copy's synced attributes; detaching what was not attached does nothing.
      if (rows.length === 0 && op === 'detach') return
      await this.record(em, run, { resource: r.name, globalId, op, origin: null, tenants: [tenant.key], version: await this.nextVersion() })
    })
    await this.drain(null)
  }

  private async central (fn: (em: EntityManager, run: Run) => Promise<void>): Promise<void> {
    const em = this.parts.orm.em.fork({ clear: true, useContext: false })
    await em.transactional(async (tem) => {
      const conn = tem.getConnection()
      const trx = tem.getTransactionContext()
      await fn(tem, async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx))
    })
  }

  private hooks (tenantKey: string | null): CaptureHooks {
    return {
      nextVersion: async () => await this.nextVersion(),
      record: async (em, run, change) => { await this.record(em, run, change) },
      committed: async () => { await this.drain(tenantKey); this.wake() },
      guard: tenantKey === null
        ? undefined
        : (className) => {
            const scope = this.parts.scope()
            if (scope === null) throw new NoTenantContextError(`Saving a synced ${className}`)
            if (scope.tenant.key !== tenantKey) throw new MisconfigurationError(`An EntityManager of tenant ${tenantKey} was used to save a ${className} in the context of tenant ${scope.tenant.identifier}.`)
          }
    } as CaptureHooks
  }

  private async nextVersion (): Promise<string> {
    const rows = await this.parts.orm.em.getConnection().execute('select nextval(\'fastify_tenancy_sync_version\')::text as v', [], 'all')
    return String(rows[0]?.v)
  }

  /** Records a change in the running transaction: a queued job (central, queued mode) or an outbox row. */
  private async record (em: EntityManager, run: Run, change: SyncChange): Promise<void> {
    if (change.origin === null && this.boss !== null) {
      await this.boss.send(SYNC_QUEUE, change, { db: inTransaction(em.getTransactionContext() as Knex.Transaction) } as PgBoss.SendOptions)
      this.wake()
      return
    }
    await run('insert into fastify_tenancy_sync_outbox (change) values (?::jsonb)', [JSON.stringify(change)])
  }

  /** Delivers one database's outbox (null: the central one), one drain per database at a time. */
  private async drain (tenantKey: string | null): Promise<void> {
    const id = tenantKey ?? 'central'
    const previous = this.draining.get(id) ?? Promise.resolve()
    const next = previous.then(async () => { await this.drainNow(tenantKey) }).catch((error: Error) => {
      this.parts.log.warn({ err: error, tenant: tenantKey }, 'fastify-tenancy: synced changes are kept in the outbox and will be retried')
    })
    this.draining.set(id, next)
    await next
    if (this.draining.get(id) === next) this.draining.delete(id)
  }

  private async drainNow (tenantKey: string | null): Promise<void> {
    if (tenantKey === null) {
      await this.drainOn(this.parts.orm.em.getConnection())
      return
    }
    const tenant = await this.parts.byKey(tenantKey)
    if (tenant === null) return
    const lease = this.parts.connections.lease(this.parts.targetOf(tenant))
    try {
      await this.drainOn(lease.em.getConnection())
    } finally {
      lease.release()
    }
  }

  private async drainOn (conn: Connection): Promise<void> {
    for (;;) {
      const delivered = await conn.transactional(async (trx) => {
        const rows = await conn.execute('select id, change from fastify_tenancy_sync_outbox order by id limit 50 for update skip locked', [], 'all', trx)
        for (const row of rows) {
          const change = (typeof row.change === 'string' ? JSON.parse(row.change) : row.change) as SyncChange
          if (this.mode === 'inline') {
            await this.applier.apply(change)
          } else {
            await this.queue().send(SYNC_QUEUE, change)
            this.wake()
          }
          await conn.execute('delete from fastify_tenancy_sync_outbox where id = ?', [row.id], 'run', trx)
        }
        return rows.length
      })
      if (delivered < 50) return
    }
  }

  private wake (): void {
    if (this.workerId !== null) this.boss?.notifyWorker(this.workerId)
  }
}
