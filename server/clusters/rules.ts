import { ClusterNotFoundError, ClusterRuleError, ConcurrentChangeError, TenantNotFoundError } from '../errors.js'
import type { Run } from '../database/central-transaction.js'

export interface LockedCluster {
  id: string
  name: string
  parentTenantId: string | null
}

/** Locks clusters (in id order, so two operations never wait on each other in a circle) and returns them. */
export async function lockClusters (run: Run, ids: Array<string | null | undefined>): Promise<Map<string, LockedCluster>> {
  const wanted = [...new Set(ids.filter((id): id is string => typeof id === 'string'))].sort()
  const locked = new Map<string, LockedCluster>()
  for (const id of wanted) {
    const rows = await run(`select id, name, parent_tenant_id from ${run.tables.tenant_clusters} where id = ? for update`, [id])
    const row = rows[0]
    if (row === undefined) throw new ClusterNotFoundError(id)
    locked.set(id, { id: row.id, name: row.name, parentTenantId: row.parent_tenant_id })
  }
  return locked
}

async function memberCount (run: Run, clusterId: string): Promise<number> {
  const rows = await run(`select count(*)::int as n from ${run.tables.tenants} where tenant_cluster_id = ?`, [clusterId])
  return Number(rows[0]?.n ?? 0)
}

async function identifierOf (run: Run, key: string): Promise<string> {
  const rows = await run(`select identifier from ${run.tables.tenants} where key = ?`, [key])
  return String(rows[0]?.identifier ?? key)
}

/**
 * A tenant has left `cluster` (its row already says so). If it was the
 * parent: refused while other tenants remain; the parent is cleared when it
 * was the last one.
 */
export async function afterLeaving (run: Run, cluster: LockedCluster, tenantKey: string): Promise<void> {
  if (cluster.parentTenantId !== tenantKey) return
  if (await memberCount(run, cluster.id) > 0) {
    throw new ClusterRuleError(`"${await identifierOf(run, tenantKey)}" is the Parent Tenant of "${cluster.name}" and other tenants remain: make another tenant the Parent Tenant first.`)
  }
  await run(`update ${run.tables.tenant_clusters} set parent_tenant_id = null, updated_at = now() where id = ?`, [cluster.id])
  cluster.parentTenantId = null
}

/** A tenant has joined `cluster` (its row already says so): the first tenant becomes the parent. */
export async function afterJoining (run: Run, cluster: LockedCluster, tenantKey: string): Promise<void> {
  if (cluster.parentTenantId !== null) return
  await run(`update ${run.tables.tenant_clusters} set parent_tenant_id = ?, updated_at = now() where id = ?`, [tenantKey, cluster.id])
  cluster.parentTenantId = tenantKey
}

/** Checks a new parent for `cluster`: a member, or none only when the cluster has no tenants. */
export async function checkParent (run: Run, cluster: LockedCluster, parentKey: string | null): Promise<void> {
  if (parentKey === null) {
    if (await memberCount(run, cluster.id) > 0) throw new ClusterRuleError(`"${cluster.name}" has tenants, so it must have a Parent Tenant.`)
    return
  }
  const rows = await run(`select 1 from ${run.tables.tenants} where key = ? and tenant_cluster_id = ?`, [parentKey, cluster.id])
  if (rows.length === 0) throw new ClusterRuleError(`"${await identifierOf(run, parentKey)}" is not a tenant of "${cluster.name}", so it cannot be its Parent Tenant.`)
}

/**
 * Puts a tenant in a cluster, or in none (null), keeping the rule on both
 * sides, inside the caller's transaction. A tenant moved by someone else
 * meanwhile throws FST_TENANCY_CONCURRENT_CHANGE, so the caller runs again.
 */
export async function moveTenant (run: Run, tenantKey: string, clusterId: string | null): Promise<void> {
  const before = await run(`select tenant_cluster_id from ${run.tables.tenants} where key = ?`, [tenantKey])
  if (before[0] === undefined) throw new TenantNotFoundError(tenantKey)
  const from = before[0].tenant_cluster_id as string | null
  if (from === clusterId) return
  const locked = await lockClusters(run, [from, clusterId])
  // Lock the tenant row and make sure no one moved it while we waited for the clusters.
  const now = await run(`select tenant_cluster_id from ${run.tables.tenants} where key = ? for update`, [tenantKey])
  if ((now[0]?.tenant_cluster_id ?? null) !== from) throw new ConcurrentChangeError(`tenant ${tenantKey}`)
  await run(`update ${run.tables.tenants} set tenant_cluster_id = ?, updated_at = now() where key = ?`, [clusterId, tenantKey])
  if (from !== null) await afterLeaving(run, locked.get(from) as LockedCluster, tenantKey)
  if (clusterId !== null) await afterJoining(run, locked.get(clusterId) as LockedCluster, tenantKey)
}
