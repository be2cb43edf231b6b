import type { SyncedResourceDefinition } from '../index.js'
import { CentralCompanyEntity } from './entities/central-company.entity.js'
import { CompanyEntity } from './entities/company.entity.js'
import { TenantCompanyEntity } from './entities/tenant-company.entity.js'

export { CentralCompanyEntity, CompanyEntity, TenantCompanyEntity }

/** The companies resource with its own pivot table (`tenant_companies`). */
export const COMPANY_PIVOT = { table: 'tenant_companies', tenantColumn: 'tenant_key', globalIdColumn: 'global_company_id' }

/** Synced companies: name and plan are shared; notes stay per tenant; private companies are never synced. */
export function companiesResource (mapping: SyncedResourceDefinition['mapping'] = COMPANY_PIVOT): SyncedResourceDefinition {
  return {
    name: 'companies',
    central: CentralCompanyEntity,
    tenant: CompanyEntity,
    attributes: ['name', 'plan'],
    mapping,
    creationDefaults: { tenant: () => ({ notes: 'synced from the central database' }) },
    shouldSync: (row) => row.plan !== 'private'
  }
}

export const demoCentralEntities = [CentralCompanyEntity, TenantCompanyEntity]

export { CENTRAL_COMPANIES_SQL, TENANT_COMPANIES_SQL } from './companies-tables.js'
