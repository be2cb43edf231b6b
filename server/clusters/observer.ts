import type { EntityManager, EventArgs, EventSubscriber } from '@mikro-orm/core'
import { TenantClusterEntity } from '../entities/central/tenant-cluster.entity.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import { afterJoining, afterLeaving, checkParent, lockClusters } from './rules.js'
import { centralRun, type Run } from '../database/central-transaction.js'
import { centralTables } from '../database/central-schema.js'

function runner (em: EntityManager): Run {
  return centralRun(em.getConnection(), centralTables(em), em.getTransactionContext())
}

/** The id a relation holds in a change set (an entity, a reference, or a bare key). */
function idOf (value: unknown): string | null {
  if (value == null) return null
  if (typeof value === 'string') return value
  const v = value as { id?: string, key?: string }
  return v.id ?? v.key ?? null
}

/**
 * The tenant cluster observer: changes made through the ORM (a tenant's
 * `cluster`, a cluster's `parentTenant`) follow the same rules as
 * `app.tenancy.clusters`, inside the flush's own transaction. A refused change
 * throws FST_TENANCY_CLUSTER_RULE and the flush rolls back.
 */
export function clusterObserver (): EventSubscriber {
  const tenantClass = TenantEntity.meta.className
  const clusterClass = TenantClusterEntity.meta.className
  return {
    async afterCreate (args: EventArgs<any>) {
      if (args.meta.className !== tenantClass) return
      const to = idOf(args.entity.cluster)
      if (to === null) return
      const run = runner(args.em)
      const cluster = (await lockClusters(run, [to])).get(to)
      if (cluster !== undefined) await afterJoining(run, cluster, String(args.entity.key))
    },
    async afterUpdate (args: EventArgs<any>) {
      const payload = args.changeSet?.payload ?? {}
      const run = runner(args.em)
      if (args.meta.className === tenantClass && Object.hasOwn(payload, 'cluster')) {
        const from = idOf(args.changeSet?.originalEntity?.cluster)
        const to = idOf(payload.cluster)
        if (from === to) return
        const locked = await lockClusters(run, [from, to])
        const key = String(args.entity.key)
        if (from !== null && locked.has(from)) await afterLeaving(run, locked.get(from) as NonNullable<ReturnType<typeof locked.get>>, key)
        if (to !== null && locked.has(to)) await afterJoining(run, locked.get(to) as NonNullable<ReturnType<typeof locked.get>>, key)
      }
      if (args.meta.className === clusterClass && Object.hasOwn(payload, 'parentTenant')) {
        const id = String(args.entity.id)
        const cluster = (await lockClusters(run, [id])).get(id)
        if (cluster !== undefined) await checkParent(run, cluster, idOf(payload.parentTenant))
      }
    }
  }
}
