import { quoteIdent } from '../names.js'

/**
 * The SQL of row-level security in strategy `shared`. Every tenant table has a
 * `tenant_key uuid not null` column, RLS enabled and FORCED (the owner is held
 * to it too), a policy that lets a row through only when its key equals the
 * tenant of the running transaction, and a policy that lets the central role
 * (named in the options) cross tenants.
 *
 * The tenant of a transaction is the custom setting `fastify_tenancy.tenant`,
 * set with `set_config(..., true)` (transaction-local). Its value is the key
 * signed with a secret only the owner can read (`<key>.<sha256 hex>`), so SQL
 * the app writes by hand cannot name another tenant: `current_tenant()` returns
 * the key only when the signature holds, else NULL, and NULL matches no row.
 * The policy compares the column to `(select current_tenant())`, an InitPlan
 * evaluated once per statement: the column is not cast, so its index is used.
 */

/** The column every tenant table carries. */
export const TENANT_COLUMN = 'tenant_key'
/** The transaction-local setting that names the tenant. */
export const TENANT_SETTING = 'fastify_tenancy.tenant'
/** Schema of the secret and of `current_tenant()`. */
export const RLS_SCHEMA = 'fastify_tenancy_rls'
/** Name of the policy that keeps a tenant to its rows. */
export const TENANT_POLICY = 'fastify_tenancy_tenant'
/** Name of the policy that lets the central role cross tenants. */
export const CENTRAL_POLICY = 'fastify_tenancy_central'
/** Tables in the shared schema that belong to no tenant. */
export const NOT_TENANT_TABLES = new Set(['fastify_tenancy_migrations'])

const CURRENT = `(select ${RLS_SCHEMA}.current_tenant())`

/** Idempotent: the secret (made once, random) and the function that checks a signed setting. Run as the owner. */
export function installSql (): string[] {
  return [
    `create schema if not exists ${RLS_SCHEMA}`,
    `create table if not exists ${RLS_SCHEMA}.secret (only_one boolean primary key default true check (only_one), value text not null)`,
    `insert into ${RLS_SCHEMA}.secret (value) values (encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex')) on conflict do nothing`,
    `revoke all on ${RLS_SCHEMA}.secret from public`,
    // security definer: it reads the secret the caller may not. A fixed search_path keeps it from being hijacked.
    // No regular expression: matching one cost 15 µs a statement, the rest of the check 3 µs. The cast is safe
    // without one, since only a value the signer made (it signs checked UUIDs alone) gets past the signature.
    `create or replace function ${RLS_SCHEMA}.current_tenant() returns uuid
       language sql stable security definer parallel safe
       set search_path = pg_catalog, pg_temp
       as $$
         select case
           when length(c.v) = 101 and substr(c.v, 37, 1) = '.'
             and substr(c.v, 38) = encode(sha256(convert_to(s.value || ':' || substr(c.v, 1, 36), 'UTF8')), 'hex')
           then substr(c.v, 1, 36)::uuid
         end
         from (select current_setting('${TENANT_SETTING}', true) as v) c, ${RLS_SCHEMA}.secret s
       $$`,
    `grant usage on schema ${RLS_SCHEMA} to public`,
    `grant execute on function ${RLS_SCHEMA}.current_tenant() to public`
  ]
}

function qualified (schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`
}

/** Adds the tenant key column (defaulting to the transaction's tenant) and its index. */
export function tenantColumnSql (schema: string, table: string): string[] {
  const t = qualified(schema, table)
  return [
    `alter table ${t} add column if not exists ${TENANT_COLUMN} uuid`,
    `alter table ${t} alter column ${TENANT_COLUMN} set default ${RLS_SCHEMA}.current_tenant()`,
    `alter table ${t} alter column ${TENANT_COLUMN} set not null`,
    `create index if not exists ${quoteIdent(indexName(table, 'tenant_key_idx'))} on ${t} (${TENANT_COLUMN})`
  ]
}

/** RLS on and forced, and the two policies. */
export function policySql (schema: string, table: string, centralRole: string): string[] {
  const t = qualified(schema, table)
  return [
    `alter table ${t} enable row level security`,
    `alter table ${t} force row level security`,
    `drop policy if exists ${TENANT_POLICY} on ${t}`,
    `create policy ${TENANT_POLICY} on ${t} as permissive for all to public using (${TENANT_COLUMN} = ${CURRENT}) with check (${TENANT_COLUMN} = ${CURRENT})`,
    `drop policy if exists ${CENTRAL_POLICY} on ${t}`,
    `create policy ${CENTRAL_POLICY} on ${t} as permissive for all to ${quoteIdent(centralRole)} using (true) with check (true)`
  ]
}

/**
 * Tables whose primary key must hold per tenant: the syncer's version per copy
 * (every tenant holding a copy of the same resource has its own row). The key
 * keeps its name, which the syncer's upserts name.
 */
export const PER_TENANT_PRIMARY_KEYS: Readonly<Record<string, string[]>> = { fastify_tenancy_sync_state: ['resource', 'global_id'] }

/** Makes a table's primary key (tenant_key, its columns), under the same name. */
export function perTenantPrimaryKeySql (schema: string, table: string, columns: string[]): string[] {
  const t = qualified(schema, table)
  const name = quoteIdent(`${table}_pkey`.slice(0, 63))
  return [
    `alter table ${t} drop constraint if exists ${name}`,
    `alter table ${t} add constraint ${name} primary key (${[TENANT_COLUMN, ...columns].map(quoteIdent).join(', ')})`
  ]
}

/** Makes a global unique constraint a per-tenant one: (tenant_key, its columns). */
export function perTenantUniqueSql (schema: string, table: string, constraint: string, columns: string[]): string[] {
  const t = qualified(schema, table)
  return [
    `alter table ${t} drop constraint ${quoteIdent(constraint)}`,
    `alter table ${t} add constraint ${quoteIdent(constraint)} unique (${[TENANT_COLUMN, ...columns].map(quoteIdent).join(', ')})`
  ]
}

/** What the app role may do in the shared schema: use its tables, never own them. */
export function grantSql (schema: string, appRole: string): string[] {
  const s = quoteIdent(schema)
  const r = quoteIdent(appRole)
  return [
    `grant usage on schema ${s} to ${r}`,
    `grant select, insert, update, delete on all tables in schema ${s} to ${r}`,
    `grant usage, select on all sequences in schema ${s} to ${r}`,
    ...[...NOT_TENANT_TABLES].map((table) => `do $$ begin if to_regclass('${schema}.${table}') is not null then execute 'revoke all on ${s}.${quoteIdent(table)} from ${r}'; end if; end $$`)
  ]
}

/** A migration helper: the SQL that makes `table` (made by a migration in the shared schema) a tenant table. */
export function tenantTableSql (schema: string, table: string, centralRole: string): string[] {
  return [...tenantColumnSql(schema, table), ...policySql(schema, table, centralRole)]
}

function indexName (table: string, suffix: string): string {
  return `${table}_${suffix}`.slice(0, 63)
}
