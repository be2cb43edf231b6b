import type { SyncChange } from './change.js'
import type { Run } from './run.js'
import { ident, type SyncedResource } from './resource.js'

/**
 * Locks a central row of a resource for the running transaction; its rows
 * come back (none when it is gone). Every central writer of syncing takes the
 * row first, then its version (versions.ts), then mapping rows.
 */
export async function lockCentralRow (run: Run, r: SyncedResource, globalId: string, mode: 'update' | 'share' = 'update'): Promise<Array<Record<string, unknown>>> {
  return await run(`select 1 as n from ${r.central.sqlTable} where ${ident(r.central.globalIdColumn)} = ? for ${mode}`, [globalId])
}

/** The tenants a central row is mapped to. */
export async function mappedTenants (run: Run, r: SyncedResource, globalId: string): Promise<string[]> {
  const [sql, params] = r.mapping.tenantsSql(globalId)
  return (await run(sql, params)).map((row) => String(row.key))
}

/** Central update deliveries for every mapped tenant, with the central row's synced values as they are now. */
export async function updateDeliveries (run: Run, r: SyncedResource, globalId: string, origin: string | null, version: string, soft?: 'deleted' | 'restored'): Promise<SyncChange[]> {
  const columns = [...r.central.syncedColumns, ...(soft === undefined ? [] : [r.central.deletedAtColumn as string])]
  const [values] = await run(`select ${columns.map(ident).join(', ')} from ${r.central.sqlTable} where ${ident(r.central.globalIdColumn)} = ?`, [globalId])
  if (values === undefined) return []
  const tenants = await mappedTenants(run, r, globalId)
  return tenants.map((tenant) => ({ resource: r.name, globalId, op: 'update', origin, tenant, values, version, ...(soft === undefined ? {} : { soft }) }))
}
