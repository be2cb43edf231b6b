import { Migration20261122000001Tenant } from './Migration20261122000001_tenant.js'
import { Migration20261122000002TenantSync } from './Migration20261122000002_sync.js'

/** Tenant migrations in the order they run. */
export const tenantMigrations = [
  { name: 'Migration20261122000001_tenant', class: Migration20261122000001Tenant },
  { name: 'Migration20261122000002_sync', class: Migration20261122000002TenantSync }
]
