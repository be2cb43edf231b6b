import type { Tenant } from '../tenant.js'
import { TenantInactiveError, TenantSuspendedError } from '../errors.js'

/** Throws unless the tenant's status lets it serve requests: suspended is 403, any other non-active status 503. */
export function assertServes (tenant: Tenant): void {
  if (tenant.status === 'active') return
  if (tenant.status === 'suspended') throw new TenantSuspendedError(tenant.identifier)
  throw new TenantInactiveError(tenant.identifier, tenant.status)
}
