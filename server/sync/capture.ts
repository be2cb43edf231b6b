import { v7 as uuidv7 } from 'uuid'
import type { EntityManager, EventArgs, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core'
import type { SyncChange } from './change.js'
import { ident, type ResourceSide, type SyncedResource } from './resource.js'

/** Runs one statement inside the flush's own transaction. */
type Run = (sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>

function runner (em: EntityManager): Run {
  const conn = em.getConnection()
  const trx = em.getTransactionContext()
  return async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)
}

/** What a capture needs from the sync manager. */
export interface CaptureHooks {
  /** A new change version from the central sequence (outside any transaction). */
  nextVersion: () => Promise<string>
  /** Records a change inside the transaction `run` belongs to (outbox row, or a queued job for central changes). */
  record: (em: EntityManager, run: Run, change: SyncChange) => Promise<void>
  /** The flush that recorded changes has committed: deliver them. */
  committed: (em: EntityManager) => Promise<void>
  /** Throws unless this database may be written now (tenant side: the running code's tenant owns it). */
  guard?: (className: string) => void
}

async function recordVersion (run: Run, resource: string, globalId: string, version: string): Promise<void> {
  await run(`insert into fastify_tenancy_sync_state (resource, global_id, version) values (?, ?, ?)
    on conflict (resource, global_id) do update set version = greatest(fastify_tenancy_sync_state.version, excluded.version)`, [resource, globalId, version])
}

function globalIdOf (r: SyncedResource, entity: Record<string, unknown>): string {
  return String(entity[r.definition.globalId ?? 'globalId'])
}

/** Gives an entity being created a global id when it has none. */
function ensureGlobalId (r: SyncedResource, entity: Record<string, unknown>): void {
  const prop = r.definition.globalId ?? 'globalId'
  if (entity[prop] == null) entity[prop] = uuidv7()
}

/**
 * Records an update of synced attributes made on one side (`origin`: null
 * for central, else the tenant key), with the values as stored.
 */
async function recordUpdate (args: EventArgs<any>, r: SyncedResource, side: ResourceSide, origin: string | null, hooks: CaptureHooks): Promise<void> {
  const run = runner(args.em)
  const globalId = globalIdOf(r, args.entity)
  const version = await hooks.nextVersion()
  const rows = await run(`select ${side.syncedColumns.map(ident).join(', ')} from ${ident(side.table)} where ${ident(side.globalIdColumn)} = ?`, [globalId])
  await recordVersion(run, r.name, globalId, version)
  await hooks.record(args.em, run, { resource: r.name, globalId, op: 'update', origin, values: rows[0] ?? {}, version })
}

/** Delivery after commit, awaited so an inline change reaches the other copies before the flush resolves. */
function deliveryHooks (pending: WeakSet<EntityManager>, hooks: CaptureHooks): Pick<EventSubscriber, 'afterFlush' | 'afterTransactionCommit'> {
  return {
    async afterFlush (args: FlushEventArgs) { if (pending.has(args.em) && !args.em.isInTransaction()) { pending.delete(args.em); await hooks.committed(args.em) } },
    async afterTransactionCommit (args: TransactionEventArgs) { if (pending.has(args.em)) { pending.delete(args.em); await hooks.committed(args.em) } }
  }
}

function changedAttributes (args: EventArgs<any>, resource: SyncedResource): boolean {
  const payload = args.changeSet?.payload ?? {}
  return resource.attributes.some((a) => Object.hasOwn(payload, a))
}

/**
 * Watches the central entities of synced resources (and the pivot) and
 * records each synced change inside the same transaction as the change.
 */
export function centralCapture (resources: SyncedResource[], pivotClassNames: Map<string, SyncedResource>, hooks: CaptureHooks): EventSubscriber {
  const byClass = new Map(resources.map((r) => [r.central.className, r]))
  const pending = new WeakSet<EntityManager>()

  return {
    async beforeCreate (args) {
      const r = byClass.get(args.meta.className)
      if (r !== undefined) ensureGlobalId(r, args.entity)
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined || !changedAttributes(args, r)) return
      await recordUpdate(args, r, r.central, null, hooks)
      pending.add(args.em)
    },
    async beforeDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      const tenants = await run(`select ${ident(r.pivot.tenantColumn)} as key from ${ident(r.pivot.table)} where ${ident(r.pivot.globalIdColumn)} = ?`, [globalId])
      const version = await hooks.nextVersion()
      await hooks.record(args.em, run, { resource: r.name, globalId, op: 'delete', origin: null, tenants: tenants.map((t) => String(t.key)), version })
      await run('delete from fastify_tenancy_sync_state where resource = ? and global_id = ?', [r.name, globalId])
      pending.add(args.em)
    },
    async afterCreate (args) {
      const r = pivotClassNames.get(args.meta.className)
      if (r === undefined) return
      await pivotChange(args, r, 'attach')
    },
    async afterDelete (args) {
      const r = pivotClassNames.get(args.meta.className)
      if (r === undefined) return
      await pivotChange(args, r, 'detach')
    },
    ...deliveryHooks(pending, hooks)
  }

  async function pivotChange (args: EventArgs<any>, r: SyncedResource, op: 'attach' | 'detach'): Promise<void> {
    const props = Object.values(args.meta.properties)
    const propOf = (column: string): string | undefined => props.find((p) => p.fieldNames?.[0] === column)?.name
    const tenantProp = propOf(r.pivot.tenantColumn)
    const gidProp = propOf(r.pivot.globalIdColumn)
    if (tenantProp === undefined || gidProp === undefined) return
    const entity = args.entity as Record<string, unknown>
    const run = runner(args.em)
    const version = await hooks.nextVersion()
    await hooks.record(args.em, run, { resource: r.name, globalId: String(entity[gidProp]), op, origin: null, tenants: [String(entity[tenantProp])], version })
    pending.add(args.em)
  }
}

/**
 * Watches the tenant entities of synced resources in one tenant database and
 * records each synced change in that database's outbox, inside the change's
 * own transaction.
 */
export function tenantCapture (resources: SyncedResource[], tenantKeyOf: () => string, hooks: CaptureHooks): EventSubscriber {
  const byClass = new Map(resources.map((r) => [r.tenant.className, r]))
  const pending = new WeakSet<EntityManager>()

  const guard = (className: string): SyncedResource | undefined => {
    const r = byClass.get(className)
    if (r !== undefined) hooks.guard?.(className)
    return r
  }

  return {
    async beforeCreate (args) {
      const r = guard(args.meta.className)
      if (r !== undefined) ensureGlobalId(r, args.entity)
    },
    async beforeUpdate (args) { guard(args.meta.className) },
    async beforeDelete (args) { guard(args.meta.className) },
    async afterCreate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      const version = await hooks.nextVersion()
      const rows = await run(`select * from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])
      await recordVersion(run, r.name, globalId, version)
      await hooks.record(args.em, run, { resource: r.name, globalId, op: 'create', origin: tenantKeyOf(), values: rows[0] ?? {}, version })
      pending.add(args.em)
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined || !changedAttributes(args, r)) return
      await recordUpdate(args, r, r.tenant, tenantKeyOf(), hooks)
      pending.add(args.em)
    },
    async afterDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const run = runner(args.em)
      const globalId = globalIdOf(r, args.entity)
      const version = await hooks.nextVersion()
      await run('delete from fastify_tenancy_sync_state where resource = ? and global_id = ?', [r.name, globalId])
      await hooks.record(args.em, run, { resource: r.name, globalId, op: 'delete', origin: tenantKeyOf(), version })
      pending.add(args.em)
    },
    ...deliveryHooks(pending, hooks)
  }
}
