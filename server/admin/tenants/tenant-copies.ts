import type { TenancyApi } from '../../tenancy-api.js'
import type { Tenant } from '../../tenant.js'

export interface ResourceCopies {
  resource: string
  /** The synced attributes, the columns of the table. */
  attributes: string[]
  /** The tenant database's own rows (at most 50), by global id. */
  rows: Array<{ globalId: string, values: string[] }>
  /** Set when the tenant's database could not be read. */
  error: string | null
}

/**
 * What each synced resource looks like inside the tenant's own database, to
 * show next to the central rows: a copy that drifted shows up here.
 */
export async function tenantCopies (tenancy: TenancyApi, tenant: Tenant): Promise<ResourceCopies[]> {
  const out: ResourceCopies[] = []
  for (const resource of tenancy.sync?.resources.values() ?? []) {
    const side = resource.tenant
    // Names come from the entity metadata, never from input; quoted all the same.
    const q = (name: string): string => `"${name.replaceAll('"', '""')}"`
    const columns = [side.globalIdColumn, ...side.syncedColumns.filter((_, i) => resource.attributes[i] !== 'password')]
    const attributes = resource.attributes.filter((a) => a !== 'password')
    try {
      const rows = await tenancy.run(tenant, async (scope) =>
        await scope.em.getConnection().execute(`select ${columns.map(q).join(', ')} from ${q(side.table)} order by 2 limit 50`, [], 'all'))
      out.push({ resource: resource.name, attributes, rows: rows.map((r: Record<string, unknown>) => ({ globalId: String(r[side.globalIdColumn]), values: side.syncedColumns.filter((_, i) => resource.attributes[i] !== 'password').map((c) => String(r[c] ?? '')) })), error: null })
    } catch {
      out.push({ resource: resource.name, attributes, rows: [], error: 'The tenant database cannot be read right now.' })
    }
  }
  return out
}
