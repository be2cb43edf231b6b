import type { Tenant } from '../tenant.js'
import type { DatabaseStrategy } from './strategy.js'
import type { TenantTarget } from './tenant-target.js'
import { tenantDatabaseName } from './names.js'
import { misuse } from '../misuse.js'

export interface TargetSettings {
  hosts: Record<string, string>
  defaultHost: string
  prefix: string
  suffix: string
}

/** Where each tenant's tables live: which host, which database or schema. */
export class TenantTargets {
  private readonly settings: TargetSettings
  private readonly strategy: Pick<DatabaseStrategy, 'target'>
  // Tenant objects are replaced, never changed, when a tenant changes: one
  // target per object spares every request building URLs again.
  private readonly made = new WeakMap<object, TenantTarget>()

  constructor (settings: TargetSettings, strategy: Pick<DatabaseStrategy, 'target'>) {
    this.settings = settings
    this.strategy = strategy
  }

  /** The tenant's database (or schema) on its host; throws FST_TENANCY_MISCONFIGURED for a host not in the options. */
  of (tenant: Pick<Tenant, 'key' | 'databaseHost' | 'isolation'>): TenantTarget {
    const hostName = tenant.databaseHost ?? this.settings.defaultHost
    const isolation = tenant.isolation ?? null
    const known = this.made.get(tenant)
    if (known !== undefined && known.key === tenant.key && known.host === hostName && (known.isolation ?? null) === isolation) return known
    const host = this.settings.hosts[hostName]
    if (host === undefined) throw misuse.tenantOnUnknownHost(tenant.key, hostName)
    const target = this.strategy.target(tenant.key, hostName, host, isolation)
    this.made.set(tenant, target)
    return target
  }

  /** A tenant's database (or schema) name: from its key, never its identifier. */
  name (tenant: Pick<Tenant, 'key'>): string {
    return tenantDatabaseName(tenant.key, this.settings.prefix, this.settings.suffix)
  }
}

/** How services that reach tenant databases find them. */
export type TargetOf = (tenant: Pick<Tenant, 'key' | 'databaseHost' | 'isolation'>) => TenantTarget
