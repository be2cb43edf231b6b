import { tenantEntities, type SyncedResourceDefinition } from '../index.js'
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
export const demoTenantEntities = [...tenantEntities, CompanyEntity]

/** The demo's central tables for companies (a central migration of the app). */
export const CENTRAL_COMPANIES_SQL = [
  `create table if not exists companies (
    id serial primary key,
    global_id varchar(64) not null unique,
    name varchar(255) not null,
    plan varchar(32) not null default 'free',
    deleted_at timestamptz null,
    created_at timestamptz not null default now())`,
  `create table if not exists tenant_companies (
    tenant_key uuid not null,
    global_company_id varchar(64) not null references companies (global_id) on update cascade on delete cascade,
    primary key (tenant_key, global_company_id))`
]

/** The demo's tenant table for companies (a tenant migration of the app). */
export const TENANT_COMPANIES_SQL = [
  `create table if not exists companies (
    id serial primary key,
    global_id varchar(64) not null unique,
    name varchar(255) not null,
    plan varchar(32) not null default 'free',
    notes text null,
    deleted_at timestamptz null)`
]
