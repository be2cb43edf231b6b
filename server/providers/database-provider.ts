import { misuse } from '../misuse.js'
import { assertSafeName } from '../database/names.js'
import { DEFAULT_CENTRAL_SCHEMA } from '../database/central-schema.js'
import { GenericTenant, UUID_PATTERN, type Tenant } from '../tenant.js'
import type { SqlExecutor, TenantProvider } from './provider.js'

export interface DatabaseProviderOptions {
  execute: SqlExecutor
  /** Table of tenants, `table` or `schema.table` (default `tenancy.tenants`). */
  table?: string
  /** Table of tenant domains, `table` or `schema.table` (default `tenancy.domains`), or null when there is none. */
  domainsTable?: string | null
  /** Column holding the resource key (default `resource_key`), or null when tenants have none. */
  resourceKeyColumn?: string | null
  /** Class to build each tenant from its row (default GenericTenant). */
  tenantClass?: new (row: any) => Tenant
}

/** `name` or `schema.name`, each part checked and quoted. */
function tableName (name: string): string {
  const parts = name.split('.')
  if (parts.length > 2) assertSafeName(name)
  return parts.map((part) => `"${assertSafeName(part)}"`).join('.')
}

/** Loads tenants with plain SQL, as plain objects: no ORM, no events. */
export function databaseProvider (options: DatabaseProviderOptions): TenantProvider {
  const table = tableName(options.table ?? `${DEFAULT_CENTRAL_SCHEMA}.tenants`)
  const domains = options.domainsTable === null ? null : tableName(options.domainsTable ?? `${DEFAULT_CENTRAL_SCHEMA}.domains`)
  const resourceColumn = options.resourceKeyColumn === null ? null : assertSafeName(options.resourceKeyColumn ?? 'resource_key')
  const Make = options.tenantClass ?? GenericTenant
  const select = `select t.*${resourceColumn === null ? '' : `, t."${resourceColumn}" as resource_key`} from ${table} t`

  const one = async (sql: string, value: string): Promise<Tenant | null> => {
    const rows = await options.execute(sql, [value])
    return rows[0] === undefined ? null : new Make(rows[0] as any)
  }

  return {
    name: 'database',
    byIdentifier: async (identifier) => await one(`${select} where t.identifier = ? limit 1`, identifier),
    byKey: async (key) => UUID_PATTERN.test(key) ? await one(`${select} where t.key = ? limit 1`, key) : null,
    byResourceKey: async (resourceKey) => {
      if (resourceColumn === null) throw misuse.noResourceKeyColumn()
      return UUID_PATTERN.test(resourceKey) ? await one(`${select} where t."${resourceColumn}" = ? limit 1`, resourceKey) : null
    },
    ...(domains === null
      ? {}
      : { byDomain: async (domain: string) => await one(`${select} join ${domains} d on d.tenant_key = t.key where d.domain = ? limit 1`, domain) })
  }
}
