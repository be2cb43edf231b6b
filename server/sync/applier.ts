import type { SyncChange } from './change.js'
import type { CopyStore } from './copy-store.js'
import type { SyncEmit, SyncEventName } from './events.js'
import { asProperties, ident, shouldSync, type ResourceSide, type SyncedResource } from './resource.js'
import { SyncUnknownResourceError } from '../errors.js'

/** One read of the central database: a single statement, never inside a transaction of the syncer's own. */
export type CentralRead = (sql: string, params: unknown[]) => Promise<Array<Record<string, any>>>

/** Renames synced column values from one side's columns to the other's. */
export function fromSide (resource: SyncedResource, from: ResourceSide, to: ResourceSide, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  resource.attributes.forEach((_, i) => {
    const column = from.syncedColumns[i] as string
    if (column in values) out[to.syncedColumns[i] as string] = values[column]
  })
  return out
}

/** A whole row from one side as the other side's columns (properties both have), plus creation defaults. */
export function copyRow (row: Record<string, unknown>, from: ResourceSide, to: ResourceSide, defaults?: (source: Record<string, unknown>) => Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [prop, column] of from.columns) {
    const targetColumn = to.columns.get(prop)
    if (targetColumn !== undefined && row[column] !== undefined) out[targetColumn] = row[column]
  }
  if (defaults !== undefined) {
    for (const [prop, value] of Object.entries(defaults(row))) {
      const column = to.columns.get(prop) ?? prop
      ident(column)
      out[column] = value
    }
  }
  return out
}

/**
 * Applies a change to one tenant's copy. Updates carry the central values
 * and version: a copy takes them only when they are newer than what it holds,
 * so changes may come twice or out of order. Attach, detach and delete look
 * at the central database as it is now, under a lock on the copy, so an
 * attach racing an update always ends with the newest values.
 */
export class SyncApplier {
  private readonly resources: ReadonlyMap<string, SyncedResource>
  private readonly copies: CopyStore
  private readonly read: CentralRead
  private readonly emit: SyncEmit

  constructor (resources: ReadonlyMap<string, SyncedResource>, copies: CopyStore, read: CentralRead, emit: SyncEmit) {
    this.resources = resources
    this.copies = copies
    this.read = read
    this.emit = emit
  }

  /** Delivers `change` to tenant `tenantKey`. */
  async deliver (change: SyncChange, tenantKey: string): Promise<void> {
    const r = this.resources.get(change.resource)
    if (r === undefined) throw new SyncUnknownResourceError(change.resource)
    const written = change.op === 'update'
      ? await this.update(r, change, tenantKey)
      : await this.reconcile(r, change, tenantKey)
    if (written !== null && tenantKey !== change.origin) {
      await this.emit({ name: written, resource: r.name, globalId: change.globalId, tenant: tenantKey, origin: change.origin })
    }
  }

  private async update (r: SyncedResource, change: SyncChange, tenantKey: string): Promise<SyncEventName | null> {
    const values = fromSide(r, r.central, r.tenant, change.values ?? {})
    if (change.soft !== undefined && r.softDeletes) {
      values[r.tenant.deletedAtColumn as string] = (change.values ?? {})[r.central.deletedAtColumn as string] ?? null
    }
    // No copy yet: nothing is written; the attach that makes it reads the newest central row itself.
    const changed = this.copies.lockedUpdate !== undefined
      ? await this.copies.lockedUpdate(tenantKey, r, change.globalId, values, change.version ?? '0')
      : await this.copies.transaction(tenantKey, async (tx) => {
        await tx.lock(r, change.globalId)
        return await tx.update(r, change.globalId, values, change.version ?? '0')
      })
    if (changed !== true) return null
    return change.soft === 'deleted' ? 'sync.deleted' : change.soft === 'restored' ? 'sync.restored' : 'sync.saved'
  }

  /** Makes the tenant's copy what the central database says now: there (newest values) when mapped, gone when not. */
  private async reconcile (r: SyncedResource, change: SyncChange, tenantKey: string): Promise<SyncEventName | null> {
    return await this.copies.transaction(tenantKey, async (tx) => {
      await tx.lock(r, change.globalId)
      const [central] = await this.read(
        `select t.*, coalesce(s.version, 0)::text as "__version", ${r.mapping.existsSql('t', r.central.globalIdColumn)} as "__mapped"
         from ${r.central.sql} t
         left join ${r.centralTables.fastify_tenancy_sync_state} s on s.resource = ? and s.global_id = t.${ident(r.central.globalIdColumn)}
         where t.${ident(r.central.globalIdColumn)} = ?`,
        [...r.mapping.existsBind(tenantKey), r.name, change.globalId])
      const has = await tx.exists(r, change.globalId)
      if (central !== undefined && !shouldSync(r, asProperties(r.central, central))) return null
      if (central !== undefined && central.__mapped === true) {
        const version = String(central.__version)
        const row = { ...central }
        delete row.__version
        delete row.__mapped
        if (!has) {
          await tx.insert(r, copyRow(row, r.central, r.tenant, r.definition.creationDefaults?.tenant), version)
          return 'sync.attached'
        }
        const changed = await tx.update(r, change.globalId, fromSide(r, r.central, r.tenant, row), version)
        return changed ? (change.op === 'attach' ? 'sync.attached' : 'sync.saved') : null
      }
      if (!has) return null
      await tx.remove(r, change.globalId)
      return change.op === 'delete' ? 'sync.deleted' : 'sync.detached'
    }) ?? null
  }
}
