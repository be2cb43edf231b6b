import type { Tenant } from '../tenant.js'

/** Reads the tenant of the running code (a registration's AsyncLocalStorage), or null outside one. */
export type TenantSource = () => Pick<Tenant, 'key' | 'identifier'> | null

// Kept on globalThis under a registered symbol: the span processor an app
// builds may come from another copy of this package than the plugin it
// registers, and both must see one list. It holds readers of AsyncLocalStorage,
// never a tenant: which tenant is current is still each async context's own.
const kSources = Symbol.for('fastify-tenancy.span-tenant-sources')
const sources: Set<TenantSource> = ((globalThis as Record<symbol, unknown>)[kSources] as Set<TenantSource> | undefined) ??
  ((globalThis as Record<symbol, unknown>)[kSources] = new Set<TenantSource>()) as Set<TenantSource>

/** Lets span processors read a registration's tenant context; returns the function that stops it. */
export function addTenantSource (source: TenantSource): () => void {
  sources.add(source)
  return () => { sources.delete(source) }
}

/** The tenant of the running code, as the first registration that has one sees it; null outside every tenant context. */
export function activeTenant (): Pick<Tenant, 'key' | 'identifier'> | null {
  for (const source of sources) {
    const tenant = source()
    if (tenant !== null) return tenant
  }
  return null
}
