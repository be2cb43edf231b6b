import type { Tenant } from '../tenant.js'

/**
 * Loads tenants from storage. Knows nothing of requests; returns null for a
 * miss and lets the caller decide what a miss means. It does not judge the
 * tenant's status either.
 */
export interface TenantProvider<T extends Tenant = Tenant> {
  readonly name: string
  byIdentifier: (identifier: string) => Promise<T | null>
  byKey: (key: string) => Promise<T | null>
  /** Throws FST_TENANCY_MISCONFIGURED when the provider's tenants have no resource key. */
  byResourceKey: (resourceKey: string) => Promise<T | null>
  /** Looks a whole hostname up in the tenant domains; needed by the domain resolver. */
  byDomain?: (domain: string) => Promise<T | null>
}

/** Runs one parameterised SQL statement (`?` placeholders) on the central database. */
export type SqlExecutor = (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>

/** What a provider driver gets besides its own configuration. */
export interface ProviderDriverContext {
  /** The central MikroORM instance. */
  orm: import('@mikro-orm/postgresql').MikroORM
  execute: SqlExecutor
}

/** Makes a provider from its configuration; registered under a driver name. */
export type ProviderDriver = (config: Record<string, unknown>, context: ProviderDriverContext) => TenantProvider
