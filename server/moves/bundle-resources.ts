import type { Tenant } from '../tenant.js'
import type { SyncedResource } from '../sync/resource.js'
import type { BundleManifest } from './bundle-format.js'
import { ident } from '../sync/mapping.js'

/** Runs central reads in one REPEATABLE READ, read-only transaction (one snapshot for every resource's mapping). */
export type CentralSnapshot = <T>(fn: (run: (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>) => Promise<T>) => Promise<T>

/** A mapped resource of a bundle that could not be mapped again at its import, and why. */
export interface UnmappedResource {
  resource: string
  globalId: string
  /** `missing`: no central row has the global id here; `undeclared`: this app declares no synced resource of that name (or syncing is off). */
  reason: 'missing' | 'undeclared'
}

export interface ResourceRestore {
  /** Mapping rows made for the imported tenant. */
  attached: number
  unmapped: UnmappedResource[]
}

export interface BundleResourceParts {
  /** The declared synced resources; null when syncing is off. */
  resources: ReadonlyMap<string, SyncedResource> | null
  snapshot: CentralSnapshot
  /** `app.tenancy.sync.attach`: the mapping row and a fresh copy, under the tenant's and the central row's locks. */
  attach: ((resource: string, globalId: string, tenant: Pick<Tenant, 'key'>) => Promise<void>) | null
}

/**
 * A tenant's synced resources in a bundle: which central rows it has (its
 * rows of every resource's mapping or pivot) with those rows as they were.
 * The tenant's copies are ordinary tenant rows and travel with its tables.
 */
export class BundleResources {
  constructor (private readonly parts: BundleResourceParts) {}

  async read (tenantKey: string): Promise<BundleManifest['resources']> {
    const resources = [...(this.parts.resources?.values() ?? [])]
    if (resources.length === 0) return []
    return await this.parts.snapshot(async (run) => {
      const out: BundleManifest['resources'] = []
      for (const r of resources) {
        const [sql, params] = r.mapping.globalIdsSql(tenantKey)
        const ids = (await run(sql, params)).map((row) => String(row.global_id))
        const rows = ids.length === 0
          ? []
          : (await run(`select to_jsonb(c) as row from ${r.central.sqlTable} c where c.${ident(r.central.globalIdColumn)}::text in (select jsonb_array_elements_text(?::jsonb))`, [JSON.stringify(ids)])).map((row) => row.row as Record<string, unknown>)
        const found = new Set(rows.map((row) => String(row[r.central.globalIdColumn])))
        // A mapping row whose central row is gone still says the tenant had it.
        for (const id of ids) if (!found.has(id)) rows.push({ [r.central.globalIdColumn]: id })
        out.push({ name: r.name, table: r.central.table, globalIdColumn: r.central.globalIdColumn, rows })
      }
      return out
    })
  }

  /**
   * Maps the imported tenant to the bundle's resources through `attach`, so
   * the new tenant gets mappings of its own (the original keeps its) and its
   * copies take the central values now. A global id with no central row
   * here, or of a resource this app does not declare, is reported.
   */
  async restore (bundled: BundleManifest['resources'], tenant: Pick<Tenant, 'key'>): Promise<ResourceRestore> {
    const result: ResourceRestore = { attached: 0, unmapped: [] }
    for (const b of bundled) {
      const declared = this.parts.resources?.get(b.name)
      for (const row of b.rows) {
        const globalId = String(row[b.globalIdColumn])
        if (declared === undefined || this.parts.attach === null) {
          result.unmapped.push({ resource: b.name, globalId, reason: 'undeclared' })
          continue
        }
        try {
          await this.parts.attach(b.name, globalId, tenant)
          result.attached++
        } catch (error) {
          if ((error as { code?: string }).code !== 'FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID') throw error
          result.unmapped.push({ resource: b.name, globalId, reason: 'missing' })
        }
      }
    }
    return result
  }
}
