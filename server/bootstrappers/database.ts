import type { TenantConnections } from '../database/tenant-connections.js'
import type { Tenant } from '../tenant.js'
import type { TenantTarget } from '../database/tenant-target.js'
import type { Bootstrapper } from '../context/bootstrapper.js'

/** Gives the scope a lazy EntityManager on the tenant's own database, and gives the connection back on revert. */
export function databaseBootstrapper (connections: TenantConnections, targetOf: (tenant: Tenant) => TenantTarget): Bootstrapper {
  return {
    name: 'database',
    bootstrap (scope) {
      scope.useDatabase(() => connections.lease(targetOf(scope.tenant)))
    },
    revert (scope) {
      scope.releaseDatabase()
    }
  }
}
