import type { Connection } from '@mikro-orm/core'
import { centralTables } from '../database/central-schema.js'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { FastifyBaseLogger } from 'fastify'
import type { Tenant } from '../tenant.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { QueueService } from '../jobs/queue-service.js'
import { NoTenantContextError, TenantDeletingError } from '../errors.js'
import { misuse } from '../misuse.js'
import { shareTenant } from '../lifecycle/tenant-rows.js'
import { SyncApplier } from './applier.js'
import { centralCapture, mappingEntities } from './central-capture.js'
import { CentralWriter } from './central-writer.js'
import { databaseCopyStore, type AsTenant, type CopyStore } from './copy-store.js'
import type { Run } from './run.js'
import { chooseDeliveries, type DeliverySettings } from './deliveries.js'
import type { SyncEvent } from '../events/sync-events.js'
import { InFlight } from './in-flight.js'
import { pruneInbox } from './inbox.js'
import { SyncQueue } from './queue.js'
import { resolveResource, type SyncedResource, type SyncedResourceDefinition } from './resource.js'
import { SyncService } from './sync-api.js'
import { SyncLoop } from './sync-loop.js'
import { SyncWork, type SyncWorkSettings } from './sync-work.js'
import { tenantCapture } from './tenant-capture.js'
import { TenantForwarding } from './tenant-forwarding.js'
import { centralSql } from '../database/central-sql.js'

/** The parts of the tenancy runtime that syncing uses. */
export interface SyncParts {
  /** The central MikroORM instance. */
  orm: MikroORM
  connections: Pick<TenantConnections, 'lease' | 'discover' | 'onOpen'>
  queues: QueueService
  /** A tenant by key (cached is fine: a deleted tenant's copy is skipped either way). */
  byKey: (key: string) => Promise<Tenant | null>
  /** Every tenant, for the look through outboxes. */
  select: () => Promise<Array<Pick<Tenant, 'key' | 'status'>>>
  targetOf: TargetOf
  /** The running code's tenant scope, for the guard on tenant entities. */
  scope: () => TenantScope | null
  log: FastifyBaseLogger
  /** Fires a sync event on `app.tenancy.events`. */
  emit: (event: SyncEvent) => Promise<void>
  /** Where tenant copies are written (default: each tenant's own database or schema). */
  copies?: CopyStore
  /** Strategy `shared` (one pool for every tenant): runs tenant-side work as the given tenant, so its statements name it. */
  asTenant?: AsTenant
}

/** Syncing as the composition root holds it: the public API, and what starts and stops it. */
export interface Syncing {
  api: SyncService
  /** Registers the capture of changes on the central ORM and on every tenant pool (before any is used). */
  install: () => void
  /** Starts the queue, the background loop (`sync.worker`) and the look through outboxes (`sync.recoverOnStart`). */
  start: () => Promise<void>
  /** Stops the loop; work under way finishes first. */
  close: () => Promise<void>
  /** Removes a deleted tenant from every resource's mapping. */
  forgetTenant: (tenantKey: string) => Promise<void>
}

function resolveResources (parts: SyncParts, options: SyncSettings): Map<string, SyncedResource> {
  const resources = new Map<string, SyncedResource>()
  const tenantMeta = parts.connections.discover()
  const centralMeta = parts.orm.getMetadata()
  for (const definition of options.resources) {
    if (resources.has(definition.name)) throw misuse.duplicateSyncResource(definition.name)
    const c = centralMeta.find(definition.central.meta.className)
    const t = tenantMeta.find(definition.tenant.meta.className)
    if (c === undefined) throw misuse.syncEntityNotCentral(definition.name, definition.central.meta.className)
    if (t === undefined) throw misuse.syncEntityNotTenant(definition.name, definition.tenant.meta.className)
    resources.set(definition.name, resolveResource(definition, c, t, centralTables(parts.orm).schema))
  }
  return resources
}

/** What syncing reads of its options: the plugin's resolved `sync` options (defaults from the options schema only). */
export type SyncSettings = DeliverySettings & SyncWorkSettings & {
  resources: readonly SyncedResourceDefinition[]
  worker: boolean
  jobExpireSeconds: number
  takeoverMs: number
  pollIntervalMs: number
  recoverOnStart: boolean
}

/** Builds resource syncing from its parts; nothing is registered or started until `install` and `start`. */
export function createSyncing (parts: SyncParts, options: SyncSettings): Syncing {
  const resources = resolveResources(parts, options)
  const list = [...resources.values()]
  const asTenant: AsTenant = parts.asTenant ?? (async (_key, fn) => await fn())
  const lease = async (key: string): Promise<{ conn: Connection, release: () => void } | null> => {
    const tenant = await parts.byKey(key)
    if (tenant === null) return null
    const held = parts.connections.lease(parts.targetOf(tenant))
    return { conn: held.em.getConnection(), release: held.release }
  }
  const inFlight = new InFlight()
  const track = async (work: Promise<void>): Promise<void> => { await inFlight.track(work) }
  const queue = new SyncQueue(parts.queues, options.jobExpireSeconds)
  const read: Run = centralSql(parts.orm)
  const applier = new SyncApplier(resources, parts.copies ?? databaseCopyStore(lease, parts.asTenant), read, parts.emit)
  const deliver = async (change: Parameters<SyncApplier['deliver']>[0], tenant: string): Promise<void> => { await applier.deliver(change, tenant) }
  const loop = new SyncLoop(async () => await pass(), options.pollIntervalMs, (error) => {
    parts.log.warn({ err: error }, 'fastify-tenancy: background delivery of synced changes failed; it will run again')
  })
  const deliveries = chooseDeliveries({ queue, deliver, wake: () => { loop.notify() }, log: parts.log }, options)
  const central = new CentralWriter(parts.orm, deliveries, track)
  const forwarding = new TenantForwarding({ resources, central, queue, lease, asTenant, emit: parts.emit, log: parts.log, takeoverMs: options.takeoverMs })
  const work = new SyncWork({ queue, deliver, forward: async (tenant) => { await forwarding.forward(tenant) }, log: parts.log }, options)
  const lockTenant = async (run: Run, key: string): Promise<void> => {
    const tenant = await shareTenant(Object.assign(run, { tables: centralTables(parts.orm) }), key)
    if (tenant.status === 'deleting') throw new TenantDeletingError(tenant.identifier)
  }
  const live = async (): Promise<Array<Pick<Tenant, 'key'>>> => (await parts.select()).filter((t) => t.status === 'active' || t.status === 'suspended')
  const api = new SyncService({
    mode: options.mode,
    resources,
    central,
    queue,
    forwarding,
    work: options.worker ? work : null,
    inFlight,
    lockTenant,
    tenants: live
  })

  let expired = 0
  let pruned = 0
  async function pass (): Promise<boolean> {
    await forwarding.markAgain()
    const { took } = await work.run()
    // Jobs of a worker that died go back to the queue within a pass of expiring, not at pg-boss's next maintenance.
    if (Date.now() - expired >= options.pollIntervalMs) { expired = Date.now(); await queue.expire() }
    // The inbox only has to outlive a second forward of a change: pruned now and then.
    if (Date.now() - pruned > 600_000) { pruned = Date.now(); await pruneInbox(read, centralTables(parts.orm)) }
    return took > 0
  }

  let installed = false
  return {
    api,
    install () {
      if (installed) return
      installed = true
      const mappings = mappingEntities(list, Object.values(parts.orm.getMetadata().getAll()))
      parts.orm.em.getEventManager().registerSubscriber(centralCapture(list, mappings, { deliveries, track, lockTenant }))
      const capture = {
        recorded: async (key: string) => { await forwarding.mark(key) },
        committed: async (key: string) => { await track(forwarding.afterCommit(key)) }
      }
      const inScope = (className: string): TenantScope => {
        const scope = parts.scope()
        if (scope === null) throw new NoTenantContextError(`Saving a synced ${className}`)
        return scope
      }
      parts.connections.onOpen((events, target) => {
        // One pool for every tenant (strategy `shared`): the running scope is the tenant of each change.
        const shared = parts.asTenant !== undefined
        events.registerSubscriber(tenantCapture(list, {
          ...capture,
          tenantKey: () => shared ? inScope('resource').tenant.key : target.key,
          guard: (className, em) => {
            const scope = inScope(className)
            // The EntityManager a lease gave for one tenant, used in another's context: refused.
            const owner = shared ? (em as { tenantKey?: string }).tenantKey : target.key
            if (owner !== undefined && owner !== scope.tenant.key) throw misuse.syncedSaveInOtherTenant(owner, className, scope.tenant.identifier)
          }
        }))
      })
    },
    async start () {
      await queue.boss()
      if (options.worker) loop.start()
      if (options.recoverOnStart) {
        track(api.recover().catch((error: Error) => { parts.log.warn({ err: error }, 'fastify-tenancy: could not look through tenant outboxes') }))
      }
    },
    async close () {
      await loop.stop()
      await inFlight.settled()
    },
    async forgetTenant (tenantKey) {
      const statements = new Map(list.map((r) => { const [sql, params] = r.mapping.forgetTenantSql(tenantKey); return [`${sql} ${JSON.stringify(params)}`, [sql, params] as const] }))
      await central.run(async (tx) => { for (const [sql, params] of statements.values()) await tx.run(sql, params) })
    }
  }
}
