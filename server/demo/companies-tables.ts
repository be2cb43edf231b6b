/** The columns a company has on both sides of syncing (see entities/company-fields.ts). */
const COMPANY_COLUMNS = `id serial primary key,
    global_id varchar(64) not null unique,
    name varchar(255) not null,
    plan varchar(32) not null default 'free',
    deleted_at timestamptz null`

/** The demo's central tables for companies (run by its central migration). */
export const CENTRAL_COMPANIES_SQL = [
  `create table if not exists companies (
    ${COMPANY_COLUMNS},
    created_at timestamptz not null default now())`,
  `create table if not exists tenant_companies (
    tenant_key uuid not null,
    global_company_id varchar(64) not null references companies (global_id) on update cascade on delete cascade,
    primary key (tenant_key, global_company_id))`
]

/** The demo's tenant table for companies (run by its tenant migration). */
export const TENANT_COMPANIES_SQL = [
  `create table if not exists companies (
    ${COMPANY_COLUMNS},
    notes text null)`
]
