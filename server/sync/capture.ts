import { v7 as uuidv7 } from 'uuid'
import type { EntityManager, EntityMetadata, EventArgs, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core'
import { SyncUnknownGlobalIdError } from '../errors.js'
import type { SyncChange } from './change.js'
import type { Run } from './copy-store.js'
import { ident, shouldSync, type SyncedResource } from './resource.js'

/** Runs statements inside the flush's own transaction (the same connection: never a second one). */
function runner (em: EntityManager): Run {
  const conn = em.getConnection()
  const trx = em.getTransactionContext()
  return async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)
}

/**
 * Takes a new version from the central sequence and records it as the
 * central row's newest, in one statement inside the running central
 * transaction (the caller holds the row's lock, so versions only grow).
 */
export async function bumpVersion (run: Run, r: SyncedResource, globalId: string): Promise<string> {
  const t = r.centralTables
  const rows = await run(`insert into ${t.fastify_tenancy_sync_state} (resource, global_id, version) values (?, ?, nextval(${t.literal('fastify_tenancy_sync_version')}))
    on conflict (resource, global_id) do update set version = excluded.version returning version::text as v`, [r.name, globalId])
  return String(rows[0]?.v)
}

/** Locks a central row of a resource for the running transaction; its rows come back (none when it is gone). */
export async function lockCentralRow (run: Run, r: SyncedResource, globalId: string, mode: 'update' | 'share' = 'update'): Promise<Array<Record<string, unknown>>> {
  return await run(`select 1 as n from ${r.central.sql} where ${ident(r.central.globalIdColumn)} = ? for ${mode}`, [globalId])
}

/** The tenants a central row is mapped to. */
export async function mappedTenants (run: Run, r: SyncedResource, globalId: string): Promise<string[]> {
  const [sql, params] = r.mapping.tenantsSql(globalId)
  return (await run(sql, params)).map((row) => String(row.key))
}

/** Central update deliveries for every mapped tenant, with the central row's synced values as they are now. */
export async function updateDeliveries (run: Run, r: SyncedResource, globalId: string, origin: string | null, version: string, soft?: 'deleted' | 'restored'): Promise<SyncChange[]> {
  const columns = [...r.central.syncedColumns, ...(soft === undefined ? [] : [r.central.deletedAtColumn as string])]
  const [values] = await run(`select ${columns.map(ident).join(', ')} from ${r.central.sql} where ${ident(r.central.globalIdColumn)} = ?`, [globalId])
  if (values === undefined) return []
  const tenants = await mappedTenants(run, r, globalId)
  return tenants.map((tenant) => ({ resource: r.name, globalId, op: 'update', origin, tenant, values, version, ...(soft === undefined ? {} : { soft }) }))
}

/** What the central capture needs from the sync manager. */
export interface CentralHooks {
  /** Records deliveries inside the transaction `run` belongs to (outbox rows, or queued jobs). */
  record: (em: EntityManager, run: Run, deliveries: SyncChange[]) => Promise<void>
  /** The flush that recorded deliveries has committed: deliver them. */
  committed: (em: EntityManager) => Promise<void>
}

/** What the tenant capture needs from the sync manager. */
export interface TenantHooks {
  /** Throws unless the running code's tenant owns this database (and `em`, a tenant's EntityManager). */
  guard: (className: string, em: EntityManager) => void
  /** The flush that wrote this tenant's outbox has committed: forward it to the central database. */
  committed: (em: EntityManager) => Promise<void>
}

function globalIdOf (r: SyncedResource, entity: Record<string, unknown>): string {
  return String(entity[r.globalIdProperty])
}

/** Gives an entity being created a global id when it has none. */
function ensureGlobalId (r: SyncedResource, entity: Record<string, unknown>): void {
  if (entity[r.globalIdProperty] == null) entity[r.globalIdProperty] = uuidv7()
}

function changed (args: EventArgs<any>, r: SyncedResource): { synced: boolean, soft: boolean } {
  const payload = args.changeSet?.payload ?? {}
  return { synced: r.attributes.some((a) => Object.hasOwn(payload, a)), soft: r.softDeletes && Object.hasOwn(payload, 'deletedAt') }
}

/** Delivery after commit, awaited so an inline change reaches the other copies before the flush resolves. */
function deliveryHooks (pending: WeakSet<EntityManager>, committed: (em: EntityManager) => Promise<void>): Pick<EventSubscriber, 'afterFlush' | 'afterTransactionCommit'> {
  return {
    async afterFlush (args: FlushEventArgs) { if (pending.has(args.em) && !args.em.isInTransaction()) { pending.delete(args.em); await committed(args.em) } },
    async afterTransactionCommit (args: TransactionEventArgs) { if (pending.has(args.em)) { pending.delete(args.em); await committed(args.em) } }
  }
}

/** A mapping table's entity: which property holds the tenant, the global id and (shared tables) the type. */
interface MappingEntity {
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
    const propOf = (column: string | null): string | undefined => column === null ? undefined : Object.values(meta.properties).find((p) => p.fieldNames?.[0] === column)?.name
    const first = mine[0] as SyncedResource
    const tenantProp = propOf(first.mapping.tenantColumn)
    const globalIdProp = propOf(first.mapping.globalIdColumn)
    if (tenantProp === undefined || globalIdProp === undefined) continue
    out.set(meta.className, { tenantProp, globalIdProp, typeProp: propOf(first.mapping.typeColumn) ?? null, byType: new Map(mine.map((r) => [r.mapping.type, r])) })
  }
  return out
}

/**
 * Watches the central entities of synced resources and their mapping tables,
 * and records each synced change inside the same transaction as the change,
 * on the same connection. Lock order, as in the syncer: the resource's
 * central row first, then its version row.
 */
export function centralCapture (resources: SyncedResource[], mappings: Map<string, MappingEntity>, hooks: CentralHooks): EventSubscriber {
  const byClass = new Map(resources.map((r) => [r.central.className, r]))
  const pending = new WeakSet<EntityManager>()
  const deleting = new WeakMap<object, string[]>()

  const record = async (em: EntityManager, run: Run, deliveries: SyncChange[]): Promise<void> => {
    if (deliveries.length === 0) return
    await hooks.record(em, run, deliveries)
    pending.add(em)
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
      // An attach through the ORM: the central row must exist, and stays while the attach commits.
      const found = await lockCentralRow(runner(args.em), m.r, m.globalId, 'share')
      if (found.length === 0) throw new SyncUnknownGlobalIdError(m.r.name, m.globalId)
    },
    async afterCreate (args) {
      const m = mapped(args)
      if (m === null) return
      await record(args.em, runner(args.em), [{ resource: m.r.name, globalId: m.globalId, op: 'attach', origin: null, tenant: m.tenant }])
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const what = changed(args, r)
      if (!what.synced && !what.soft) return
      if (!shouldSync(r, args.entity)) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      // The flush's UPDATE holds the row: the version is taken after it, in the same transaction.
      const version = await bumpVersion(run, r, globalId)
      const soft = what.soft ? ((args.entity as Record<string, unknown>).deletedAt == null ? 'restored' : 'deleted') : undefined
      await record(args.em, run, await updateDeliveries(run, r, globalId, null, version, soft))
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
        const [sql, params] = r.mapping.deleteAllSql(globalId)
        await run(sql, params)
        await run(`delete from ${r.centralTables.fastify_tenancy_sync_state} where resource = ? and global_id = ?`, [r.name, globalId])
        if (!shouldSync(r, args.entity)) return
        await record(args.em, run, tenants.map((tenant) => ({ resource: r.name, globalId, op: 'delete', origin: null, tenant })))
        return
      }
      const m = mapped(args)
      if (m === null) return
      await record(args.em, runner(args.em), [{ resource: m.r.name, globalId: m.globalId, op: 'detach', origin: null, tenant: m.tenant }])
    },
    ...deliveryHooks(pending, hooks.committed)
  }
}

/**
 * Watches the tenant entities of synced resources in one tenant database and
 * writes each synced change to that database's outbox, inside the change's
 * own transaction. Nothing here touches the central database: the change gets
 * its version when it reaches it.
 */
export function tenantCapture (resources: SyncedResource[], tenantKey: string | (() => string), hooks: TenantHooks): EventSubscriber {
  // A pool of one tenant names it once; the one pool of strategy `shared` names the tenant of each change (its context).
  const keyOf = typeof tenantKey === 'string' ? () => tenantKey : tenantKey
  const byClass = new Map(resources.map((r) => [r.tenant.className, r]))
  const pending = new WeakSet<EntityManager>()

  const guard = (className: string, em: EntityManager): SyncedResource | undefined => {
    const r = byClass.get(className)
    if (r !== undefined) hooks.guard(className, em)
    return r
  }

  const record = async (args: EventArgs<any>, change: Omit<SyncChange, 'origin' | 'id'>): Promise<void> => {
    await runner(args.em)('insert into fastify_tenancy_sync_outbox (change) values (?::jsonb)', [JSON.stringify({ ...change, origin: keyOf(), id: uuidv7() })])
    pending.add(args.em)
  }

  return {
    async beforeCreate (args) {
      const r = guard(args.meta.className, args.em)
      if (r !== undefined) ensureGlobalId(r, args.entity)
    },
    async beforeUpdate (args) { guard(args.meta.className, args.em) },
    async beforeDelete (args) { guard(args.meta.className, args.em) },
    async afterCreate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined || !shouldSync(r, args.entity)) return
      const globalId = globalIdOf(r, args.entity)
      const [row] = await runner(args.em)(`select * from ${r.tenant.sql} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])
      await record(args, { resource: r.name, globalId, op: 'create', values: row ?? {} })
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      // A soft delete (or restore) made in a tenant stays in that tenant.
      if (r === undefined || !changed(args, r).synced || !shouldSync(r, args.entity)) return
      const globalId = globalIdOf(r, args.entity)
      const [row] = await runner(args.em)(`select ${r.tenant.syncedColumns.map(ident).join(', ')} from ${r.tenant.sql} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])
      await record(args, { resource: r.name, globalId, op: 'update', values: row ?? {} })
    },
    async afterDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const globalId = globalIdOf(r, args.entity)
      await runner(args.em)('delete from fastify_tenancy_sync_state where resource = ? and global_id = ?', [r.name, globalId])
      if (!shouldSync(r, args.entity)) return
      await record(args, { resource: r.name, globalId, op: 'delete' })
    },
    ...deliveryHooks(pending, hooks.committed)
  }
}
