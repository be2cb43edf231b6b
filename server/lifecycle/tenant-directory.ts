import type { Tenant } from '../tenant.js'
import type { TenantProvider } from '../providers/provider.js'
import type { TenantTarget } from '../database/tenant-target.js'
import type { TenantTargets } from '../database/tenant-targets.js'
import type { TenantLifecycle } from './tenants.js'
import type { TenantListing, TenantListings, TenantListQuery } from './tenant-listings.js'

/**
 * `app.tenancy.tenants`: the provider's lookups (cached, for requests) and
 * the central database's own answers (`find`, `select`: never cached, for
 * admin work, scripts and jobs), plus where each tenant's data lives.
 */
export interface TenantDirectory extends TenantProvider {
  /** A tenant by identifier or key, read from the central database (not the cache). */
  find: (identifierOrKey: string) => Promise<Tenant | null>
  /** Tenants by identifiers or keys (all when none), minus `skip`; an unknown name throws FST_TENANCY_TENANT_NOT_FOUND. */
  select: (names?: readonly string[], skip?: readonly string[]) => Promise<Tenant[]>
  /** Tenants filtered (search, status, cluster), sorted and paged, with their cluster and domains, and how many match. */
  list: (query?: TenantListQuery) => Promise<{ total: number, tenants: TenantListing[] }>
  /** How many tenants there are, in all and by status. */
  counts: () => Promise<{ total: number, byStatus: Record<Tenant['status'], number> }>
  /** Where a tenant's tables live: host, database or schema, connection URL. */
  target: (tenant: Pick<Tenant, 'key' | 'databaseHost'>) => TenantTarget
  /** A tenant's database (or schema) name, made from its key. */
  databaseName: (tenant: Pick<Tenant, 'key'>) => string
}

export function tenantDirectory (provider: TenantProvider, lifecycle: Pick<TenantLifecycle, 'find' | 'select'>, listings: TenantListings, targets: TenantTargets): TenantDirectory {
  const directory: TenantDirectory = {
    name: provider.name,
    byIdentifier: async (identifier) => await provider.byIdentifier(identifier),
    byKey: async (key) => await provider.byKey(key),
    byResourceKey: async (resourceKey) => await provider.byResourceKey(resourceKey),
    find: async (identifierOrKey) => await lifecycle.find(identifierOrKey),
    select: async (names, skip) => await lifecycle.select(names, skip),
    list: async (query = {}) => await listings.list(query),
    counts: async () => await listings.counts(),
    target: (tenant) => targets.of(tenant),
    databaseName: (tenant) => targets.name(tenant)
  }
  if (provider.byDomain !== undefined) {
    const byDomain = provider.byDomain.bind(provider)
    directory.byDomain = async (domain) => await byDomain(domain)
  }
  return directory
}
