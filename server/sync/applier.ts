import type { SyncChange } from './change.js'
import type { CopyStore, CopyUpdate } from './copy-store.js'
import type { Run } from './run.js'
import type { SyncEmit, SyncEventName } from '../events/sync-events.js'
import { ident, rowProperties, shouldSync, type ResourceSide, type SourceRow, type SyncedResource } from './resource.js'
import { centralRowFor } from './versions.js'
import { SyncUnknownResourceError } from '../errors.js'

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
export function copyRow (
  row: Record<string, unknown>, from: ResourceSide, to: ResourceSide, defaults?: (source: SourceRow) => Record<string, unknown>
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [prop, column] of from.columns) {
    const targetColumn = to.columns.get(prop)
    if (targetColumn !== undefined && row[column] !== undefined) out[targetColumn] = row[column]
  }
  if (defaults !== undefined) {
    for (const [prop, value] of Object.entries(defaults(rowProperties(from, row)))) {
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
 * so changes may come twice or out of order. Attach, detach, delete, and an
 * update that finds no copy look at the central database as it is now, under
 * the copy's lock: a mapped row that syncs gets its copy (an attach racing an
 * update always ends with the newest values), an unmapped one loses it.
 */
export class SyncApplier {
  private readonly resources: ReadonlyMap<string, SyncedResource>
  private readonly copies: CopyStore
  private readonly read: Run
  private readonly emit: SyncEmit

  /** `read` runs one statement on the central database, outside any transaction of the syncer's. */
  constructor (resources: ReadonlyMap<string, SyncedResource>, copies: CopyStore, read: Run, emit: SyncEmit) {
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
    const result: CopyUpdate | undefined = this.copies.lockedUpdate !== undefined
      ? await this.copies.lockedUpdate(tenantKey, r, change.globalId, values, change.version ?? '0')
      : await this.copies.transaction(tenantKey, async (tx) => {
        await tx.lock(r, change.globalId)
        return await tx.update(r, change.globalId, values, change.version ?? '0')
      })
    // No copy although the tenant is mapped (attached while shouldSync said no, or deleted behind the syncer's back): made now.
    if (result === 'missing') return await this.reconcile(r, change, tenantKey)
    if (result !== 'changed') return null
    return change.soft === 'deleted' ? 'sync.deleted' : change.soft === 'restored' ? 'sync.restored' : 'sync.saved'
  }

  /** Makes the tenant's copy what the central database says now: there (newest values) when mapped and synced, gone when not mapped. */
  private async reconcile (r: SyncedResource, change: SyncChange, tenantKey: string): Promise<SyncEventName | null> {
    return await this.copies.transaction(tenantKey, async (tx) => {
      await tx.lock(r, change.globalId)
      const central = await centralRowFor(this.read, r, change.globalId, tenantKey)
      const has = await tx.exists(r, change.globalId)
      if (central !== undefined && !shouldSync(r, rowProperties(r.central, central.row))) return null
      if (central?.mapped === true) {
        if (!has) {
          // Deleted in the tenant, its mapping row not removed centrally yet: it stays deleted.
          if (await tx.deletedHere(r, change.globalId)) return null
          await tx.insert(r, copyRow(central.row, r.central, r.tenant, r.definition.creationDefaults?.tenant), central.version)
          return 'sync.attached'
        }
        const changed = await tx.update(r, change.globalId, fromSide(r, r.central, r.tenant, central.row), central.version)
        return changed === 'changed' ? (change.op === 'attach' ? 'sync.attached' : 'sync.saved') : null
      }
      if (!has) return null
      await tx.remove(r, change.globalId)
      return change.op === 'delete' ? 'sync.deleted' : 'sync.detached'
    }) ?? null
  }
}
