import type { EntityManager, EntityMetadata, EventArgs, EventSubscriber } from '@mikro-orm/core'
import type { Knex } from '@mikro-orm/postgresql'
import { SyncUnknownGlobalIdError } from '../errors.js'
import type { SyncChange } from './change.js'
import type { Run } from './run.js'
import type { Deliveries, RecordedDelivery } from './deliveries.js'
import { lockCentralRow, mappedTenants, updateDeliveries } from './central-rows.js'
import { changed, ensureGlobalId, globalIdOf, PerTransaction, runner, sourceRow, sourceRowBefore } from './capture-hooks.js'
import { shouldSync, type SyncedResource } from './resource.js'
import { bumpVersion, forgetVersion } from './versions.js'

/** A mapping table's entity: which property holds the tenant, the global id and (shared tables) the type. */
export interface MappingEntity {
  tenantProp: string
  globalIdProp: string
  typeProp: string | null
  /** Resources by type (an own pivot has one, under its own type). */
  byType: Map<string, SyncedResource>
}

/** Finds the central entities that are mapping tables of the resources. */
export function mappingEntities (resources: SyncedResource[], metas: EntityMetadata[]): Map<string, MappingEntity> {
  const out = new Map<string, MappingEntity>()
  for (const meta of metas) {
    const mine = resources.filter((r) => r.mapping.table === meta.tableName)
    if (mine.length === 0) continue
    const propOf = (column: string | null): string | undefined =>
      column === null ? undefined : Object.values(meta.properties).find((p) => p.fieldNames?.[0] === column)?.name
    const first = mine[0] as SyncedResource
    const tenantProp = propOf(first.mapping.tenantColumn)
    const globalIdProp = propOf(first.mapping.globalIdColumn)
    if (tenantProp === undefined || globalIdProp === undefined) continue
    out.set(meta.className, {
      tenantProp,
      globalIdProp,
      typeProp: propOf(first.mapping.typeColumn) ?? null,
      byType: new Map(mine.map((r) => [r.mapping.type, r]))
    })
  }
  return out
}

export interface CentralCaptureParts {
  deliveries: Deliveries
  /** Runs the after-commit delivery, counted as work under way. */
  track: (work: Promise<void>) => Promise<void>
  /** Refuses a tenant that does not exist or is being deleted; locks its row until the transaction ends. */
  lockTenant: (run: Run, key: string) => Promise<void>
}

/**
 * Watches the central entities of synced resources and their mapping tables,
 * and records each synced change inside the same transaction as the change,
 * on the same connection. Lock order, as everywhere in syncing: the tenant's
 * row (attach), the resource's central row, its version, mapping rows.
 */
export function centralCapture (resources: SyncedResource[], mappings: Map<string, MappingEntity>, parts: CentralCaptureParts): EventSubscriber {
  const byClass = new Map(resources.map((r) => [r.central.className, r]))
  const recorded = new PerTransaction<RecordedDelivery>(async (items) => { await parts.track(parts.deliveries.committed(items)) })
  const deleting = new WeakMap<object, string[]>()

  const record = async (em: EntityManager, changes: SyncChange[]): Promise<void> => {
    if (changes.length === 0) return
    recorded.add(em, await parts.deliveries.record(em.getTransactionContext() as Knex.Transaction, changes))
  }

  const mapped = (args: EventArgs<any>): { r: SyncedResource, tenant: string, globalId: string } | null => {
    const m = mappings.get(args.meta.className)
    if (m === undefined) return null
    const entity = args.entity as Record<string, unknown>
    const r = m.typeProp === null ? [...m.byType.values()][0] : m.byType.get(String(entity[m.typeProp]))
    if (r === undefined) return null
    return { r, tenant: String(entity[m.tenantProp]), globalId: String(entity[m.globalIdProp]) }
  }

  return {
    async beforeCreate (args) {
      const r = byClass.get(args.meta.className)
      if (r !== undefined) { ensureGlobalId(r, args.entity); return }
      const m = mapped(args)
      if (m === null) return
      // An attach through the ORM: the tenant and the central row must exist, and stay while the attach commits.
      const run = runner(args.em)
      await parts.lockTenant(run, m.tenant)
      if ((await lockCentralRow(run, m.r, m.globalId, 'share')).length === 0) throw new SyncUnknownGlobalIdError(m.r.name, m.globalId)
    },
    async afterCreate (args) {
      const m = mapped(args)
      if (m !== null) await record(args.em, [{ resource: m.r.name, globalId: m.globalId, op: 'attach', origin: null, tenant: m.tenant }])
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const what = changed(args, r)
      if (!shouldSync(r, sourceRow(r.central, args))) return
      // A save that makes the row syncable (an unsynced property decides) reaches the mapped tenants too.
      if (!what.synced && !what.soft && shouldSync(r, sourceRowBefore(r.central, args))) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      // The flush's UPDATE holds the row: the version is taken after it, in the same transaction.
      const version = await bumpVersion(run, r, globalId)
      const soft = what.soft ? ((args.entity as Record<string, unknown>).deletedAt == null ? 'restored' : 'deleted') : undefined
      await record(args.em, await updateDeliveries(run, r, globalId, null, version, soft))
    },
    async beforeDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      await lockCentralRow(run, r, globalId)
      deleting.set(args.entity, await mappedTenants(run, r, globalId))
    },
    async afterDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r !== undefined) {
        const run = runner(args.em)
        const globalId = globalIdOf(r, args.entity)
        const tenants = deleting.get(args.entity) ?? []
        await forgetVersion(run, r, globalId)
        const [sql, params] = r.mapping.deleteAllSql(globalId)
        await run(sql, params)
        if (!shouldSync(r, sourceRow(r.central, args))) return
        await record(args.em, tenants.map((tenant) => ({ resource: r.name, globalId, op: 'delete', origin: null, tenant })))
        return
      }
      const m = mapped(args)
      if (m !== null) await record(args.em, [{ resource: m.r.name, globalId: m.globalId, op: 'detach', origin: null, tenant: m.tenant }])
    },
    ...recorded.hooks()
  }
}
