import type { Tenant } from '../tenant.js'
import { SyncTimeoutError, SyncUnknownGlobalIdError, SyncUnknownResourceError } from '../errors.js'
import { mapLimit } from '../support/map-limit.js'
import { lockCentralRow, updateDeliveries } from './central-rows.js'
import type { CentralWriter } from './central-writer.js'
import type { Run } from './run.js'
import type { InFlight } from './in-flight.js'
import type { SyncQueue } from './queue.js'
import type { SyncedResource } from './resource.js'
import type { SyncWork } from './sync-work.js'
import type { TenantForwarding } from './tenant-forwarding.js'
import { bumpVersion } from './versions.js'

/** `app.tenancy.sync`: attach, detach and resync declared resources; wait for their changes. */
export interface SyncApi {
  /** `queued` or `inline` (the `sync.mode` option). */
  readonly mode: 'inline' | 'queued'
  /** The declared resources by name, with the tables and columns of both sides. */
  readonly resources: ReadonlyMap<string, SyncedResource>
  /**
   * Attaches a resource to a tenant: the mapping row is added and the whole
   * central row copied into the tenant's database. An unknown global id is
   * FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID, a missing tenant
   * FST_TENANCY_TENANT_NOT_FOUND, one being deleted
   * FST_TENANCY_TENANT_DELETING; each writes nothing.
   */
  attach: (resource: string, globalId: string, tenant: Pick<Tenant, 'key'>) => Promise<void>
  /** Detaches a resource from a tenant: the mapping row goes, and so does the tenant's copy. */
  detach: (resource: string, globalId: string, tenant: Pick<Tenant, 'key'>) => Promise<void>
  /** Sends the central row to every mapped tenant again: mends copies changed or deleted behind the syncer's back, and bulk writes. */
  resync: (resource: string, globalId: string) => Promise<void>
  /** Waits until the changes made so far are applied everywhere (tests, scripts); FST_TENANCY_SYNC_TIMEOUT after `timeoutMs`. */
  settle: (timeoutMs?: number) => Promise<void>
  /** Forwards every tenant's outbox now and delivers what is due: what a crash left behind, without waiting for the loop. */
  recover: (concurrency?: number) => Promise<void>
}

export interface SyncApiParts {
  mode: 'inline' | 'queued'
  resources: ReadonlyMap<string, SyncedResource>
  central: CentralWriter
  queue: SyncQueue
  forwarding: TenantForwarding
  /** Runs due jobs; null when this process works no queue (`sync.worker: false`). */
  work: SyncWork | null
  inFlight: InFlight
  /** Holds a live tenant's row until the transaction ends; refuses a missing or deleting one. */
  lockTenant: (run: Run, key: string) => Promise<void>
  /** Every tenant that has a database to look in. */
  tenants: () => Promise<Array<Pick<Tenant, 'key'>>>
}

export class SyncService implements SyncApi {
  readonly mode: 'inline' | 'queued'
  readonly resources: ReadonlyMap<string, SyncedResource>
  private readonly parts: SyncApiParts

  constructor (parts: SyncApiParts) {
    this.parts = parts
    this.mode = parts.mode
    this.resources = parts.resources
  }

  async attach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    const r = this.resource(resourceName)
    await this.parts.central.run(async (tx) => {
      // The lock order of every writer: the tenant's row, the central row, mapping rows; held until the attach commits.
      await this.parts.lockTenant(tx.run, tenant.key)
      if ((await lockCentralRow(tx.run, r, globalId, 'share')).length === 0) throw new SyncUnknownGlobalIdError(r.name, globalId)
      const [sql, params] = r.mapping.insertSql(tenant.key, globalId)
      await tx.run(sql, params)
      // Attaching again still refreshes the copy.
      await tx.record([{ resource: r.name, globalId, op: 'attach', origin: null, tenant: tenant.key }])
    })
  }

  async detach (resourceName: string, globalId: string, tenant: Pick<Tenant, 'key'>): Promise<void> {
    const r = this.resource(resourceName)
    await this.parts.central.run(async (tx) => {
      await lockCentralRow(tx.run, r, globalId, 'share')
      const [sql, params] = r.mapping.deleteSql(tenant.key, globalId)
      if ((await tx.run(sql, params)).length === 0) return
      await tx.record([{ resource: r.name, globalId, op: 'detach', origin: null, tenant: tenant.key }])
    })
  }

  async resync (resourceName: string, globalId: string): Promise<void> {
    const r = this.resource(resourceName)
    await this.parts.central.run(async (tx) => {
      if ((await lockCentralRow(tx.run, r, globalId)).length === 0) return
      // Newer than any copy's version: a copy that differs takes the values, a missing one is made, an equal one writes nothing.
      const version = await bumpVersion(tx.run, r, globalId)
      await tx.record(await updateDeliveries(tx.run, r, globalId, null, version))
    })
  }

  async settle (timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      await this.parts.inFlight.settled()
      // Working here: what waits for a takeover or a retry is run now instead (a forward note finds an empty outbox).
      const { took, done } = await this.parts.work?.run(true) ?? { took: 0, done: 0 }
      if (took === 0 && this.parts.inFlight.size === 0 && await this.parts.queue.pending() === 0) return
      // Waiting for another process, or for a tenant database that fails: a short pause, not a spin.
      if (done === 0) await new Promise((resolve) => setTimeout(resolve, took === 0 ? 50 : 250))
    }
    throw new SyncTimeoutError(timeoutMs)
  }

  async recover (concurrency = 4): Promise<void> {
    const tenants = await this.parts.tenants()
    await mapLimit(tenants, concurrency, async (t) => { await this.parts.forwarding.afterCommit(t.key) })
    // What is due now, as long as some of it gets through: a delivery that fails again waits for its backoff.
    if (this.parts.work !== null) while ((await this.parts.work.run()).done > 0);
  }

  private resource (name: string): SyncedResource {
    const r = this.resources.get(name)
    if (r === undefined) throw new SyncUnknownResourceError(name)
    return r
  }
}
