import { v7 as uuidv7 } from 'uuid'
import type { EntityManager, EventArgs, EventSubscriber } from '@mikro-orm/core'
import type { SyncChange } from './change.js'
import { forgetCopyVersion } from './copy-store.js'
import { changed, ensureGlobalId, globalIdOf, PerTransaction, runner, sourceRow } from './capture-hooks.js'
import { ident, shouldSync, type SyncedResource } from './resource.js'
import { appendToOutbox } from './tenant-outbox.js'

/** What the tenant capture needs from the syncer. */
export interface TenantCaptureParts {
  /** The tenant a change is made in: the pool's own, or (one pool for every tenant) the running scope's. */
  tenantKey: () => string
  /** Throws unless the running code's tenant owns this database (and `em`, a tenant's EntityManager). */
  guard: (className: string, em: EntityManager) => void
  /**
   * Called inside the transaction that wrote the tenant's outbox, before it
   * commits: makes sure some running instance forwards the outbox, should
   * this one stop before it does.
   */
  recorded: (tenantKey: string) => Promise<void>
  /** The transaction that wrote the tenant's outbox committed: forward it now. */
  committed: (tenantKey: string) => Promise<void>
}

/**
 * Watches the tenant entities of synced resources in one tenant database and
 * writes each synced change to that database's outbox, inside the change's
 * own transaction. Nothing here writes to the central database but the note
 * that the outbox has changes: a change gets its version when it reaches it.
 */
export function tenantCapture (resources: SyncedResource[], parts: TenantCaptureParts): EventSubscriber {
  const byClass = new Map(resources.map((r) => [r.tenant.className, r]))
  const written = new PerTransaction<string>(async (tenants) => {
    for (const tenant of new Set(tenants)) await parts.committed(tenant)
  })

  const guard = (className: string, em: EntityManager): SyncedResource | undefined => {
    const r = byClass.get(className)
    if (r !== undefined) parts.guard(className, em)
    return r
  }

  const record = async (args: EventArgs<any>, change: Omit<SyncChange, 'origin' | 'id'>): Promise<void> => {
    const tenant = parts.tenantKey()
    await appendToOutbox(runner(args.em), { ...change, origin: tenant, id: uuidv7() })
    if (!written.has(args.em)) await parts.recorded(tenant)
    written.add(args.em, [tenant])
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
      if (r === undefined || !shouldSync(r, sourceRow(r.tenant, args))) return
      const globalId = globalIdOf(r, args.entity)
      const [row] = await runner(args.em)(`select * from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])
      await record(args, { resource: r.name, globalId, op: 'create', values: row ?? {} })
    },
    async afterUpdate (args) {
      const r = byClass.get(args.meta.className)
      // A soft delete (or restore) made in a tenant stays in that tenant.
      if (r === undefined || !changed(args, r).synced || !shouldSync(r, sourceRow(r.tenant, args))) return
      const globalId = globalIdOf(r, args.entity)
      const [row] = await runner(args.em)(`select ${r.tenant.syncedColumns.map(ident).join(', ')} from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])
      await record(args, { resource: r.name, globalId, op: 'update', values: row ?? {} })
    },
    async afterDelete (args) {
      const r = byClass.get(args.meta.className)
      if (r === undefined) return
      const globalId = globalIdOf(r, args.entity)
      // The copy's row first (the DELETE), then its version: the order the syncer's writes take too.
      await forgetCopyVersion(runner(args.em), r, globalId)
      if (!shouldSync(r, sourceRow(r.tenant, args))) return
      await record(args, { resource: r.name, globalId, op: 'delete' })
    },
    ...written.hooks()
  }
}
