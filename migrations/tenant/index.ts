import { Migration20261122000001Tenant } from './Migration20261122000001_tenant.js'

/** Tenant migrations in the order they run. */
export const tenantMigrations = [
  { name: 'Migration20261122000001_tenant', class: Migration20261122000001Tenant }
]
