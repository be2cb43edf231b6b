import { quoteIdent } from '../names.js'

/**
 * The SQL of row-level security in strategy `shared`. Every tenant table has a
 * `tenant_key uuid not null` column, RLS enabled and FORCED (the owner is held
 * to it too), a policy that lets a row through only when its key equals the
 * tenant of the running transaction, and a policy that lets the central role
 * (named in the options) cross tenants.
 *
 * The tenant of a transaction is proven, never named: each statement of the
 * app's shared pool is sent with `select enter($1)` in front, in the same
 * round trip and transaction, the proof a bind parameter (so it is in no
 * query text another session can read, and in no error message). The proof
 * is a bearer signed with a secret only the owner can read and that expires
 * (`<key>.<expires, epoch seconds>.<HMAC-SHA256 hex>`); `enter()` checks it
 * and stores in the transaction-local setting `fastify_tenancy.tenant` a
 * value bound to this backend and this transaction (`<key>.<HMAC over the
 * key, pg_backend_pid() and the transaction's start>`). `current_tenant()`
 * returns the key only for such a value of the running transaction, else
 * NULL, and NULL matches no row: a value copied anywhere (a session setting,
 * another connection, a later transaction) names nobody. The policy compares
 * the column to `(select current_tenant())`, an InitPlan evaluated once per
 * statement: the column is not cast, so its index is used.
 */

/** The column every tenant table carries. */
export const TENANT_COLUMN = 'tenant_key'
/** The transaction-local setting that holds the proven tenant. */
export const TENANT_SETTING = 'fastify_tenancy.tenant'
/** Schema of the secret, of `enter()` and of `current_tenant()`. */
export const RLS_SCHEMA = 'fastify_tenancy_rls'
/** Name of the policy that keeps a tenant to its rows. */
export const TENANT_POLICY = 'fastify_tenancy_tenant'
/** Name of the policy that lets the central role cross tenants. */
export const CENTRAL_POLICY = 'fastify_tenancy_central'
/** Tables in the shared schema that belong to no tenant. */
export const NOT_TENANT_TABLES = new Set(['fastify_tenancy_migrations'])
/** What signs a bearer proof (before `<key>.<expires>`) and a transaction's value (before `<key>:<pid>:<start>`), so one is never the other. */
export const PROOF_LABEL = 'bearer:'
export const TRANSACTION_LABEL = 'tx:'

const CURRENT = `(select ${RLS_SCHEMA}.current_tenant())`

/** HMAC-SHA256 in SQL, from the keys XORed with HMAC's pads (kept beside the secret): hex of the MAC of text `message`. */
function hmacSql (message: string): string {
  return `encode(sha256(s.okey || sha256(s.ikey || convert_to(${message}, 'UTF8'))), 'hex')`
}

/** The running transaction, as the MAC of its value binds it: this backend and the transaction's start, in microseconds. */
const TRANSACTION = "pg_backend_pid()::text || ':' || (extract(epoch from now()) * 1000000)::bigint::text"

/** One of HMAC's pads XORed onto the secret's 32 bytes (zero-padded to SHA-256's 64-byte block). */
function padSql (pad: number): string {
  return `(select decode(string_agg(lpad(to_hex(get_byte(k.b, i) # ${pad}), 2, '0'), '' order by i), 'hex')
    from (select decode(value || repeat('00', 32), 'hex') as b from ${RLS_SCHEMA}.secret) k, generate_series(0, 63) i)`
}

/** Idempotent: the secret (made once, random, with its HMAC pads), `enter()` and `current_tenant()`. Run as the owner. */
export function installSql (): string[] {
  return [
    `create schema if not exists ${RLS_SCHEMA}`,
    `create table if not exists ${RLS_SCHEMA}.secret (only_one boolean primary key default true check (only_one), value text not null)`,
    `insert into ${RLS_SCHEMA}.secret (value) values (encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex')) on conflict do nothing`,
    `alter table ${RLS_SCHEMA}.secret add column if not exists ikey bytea, add column if not exists okey bytea`,
    `update ${RLS_SCHEMA}.secret set ikey = ${padSql(0x36)}, okey = ${padSql(0x5c)} where ikey is null or okey is null`,
    `revoke all on ${RLS_SCHEMA}.secret from public`,
    // security definer: they read the secret the caller may not. A fixed search_path keeps them from being hijacked.
    // Shapes are checked by length before any cast: only a value the signer made (it signs checked UUIDs alone) gets past a MAC.
    `create or replace function ${RLS_SCHEMA}.enter(bearer text) returns void
       language plpgsql volatile security definer
       set search_path = pg_catalog, pg_temp
       as $$
       declare
         s record;
       begin
         select ikey, okey into s from ${RLS_SCHEMA}.secret;
         if bearer is null or length(bearer) <> 112 or substr(bearer, 37, 1) <> '.' or substr(bearer, 48, 1) <> '.'
           or substr(bearer, 49) <> ${hmacSql(`'${PROOF_LABEL}' || substr(bearer, 1, 47)`)} then
           raise exception 'fastify-tenancy: the tenant proof of this statement is not valid' using errcode = '42501';
         end if;
         if substr(bearer, 38, 10)::bigint < extract(epoch from now()) then
           raise exception 'fastify-tenancy: the tenant proof of this statement has expired; are the clocks of the app and of the database server apart?' using errcode = '42501';
         end if;
         perform set_config('${TENANT_SETTING}', substr(bearer, 1, 36) || '.' || ${hmacSql(`'${TRANSACTION_LABEL}' || substr(bearer, 1, 36) || ':' || ${TRANSACTION}`)}, true);
       end
       $$`,
    // parallel restricted: pg_backend_pid() in a parallel worker is the worker's, never the transaction's backend.
    `create or replace function ${RLS_SCHEMA}.current_tenant() returns uuid
       language sql stable security definer parallel restricted
       set search_path = pg_catalog, pg_temp
       as $$
         select case
           when length(c.v) = 101 and substr(c.v, 37, 1) = '.'
             and substr(c.v, 38) = ${hmacSql(`'${TRANSACTION_LABEL}' || substr(c.v, 1, 36) || ':' || ${TRANSACTION}`)}
           then substr(c.v, 1, 36)::uuid
         end
         from (select current_setting('${TENANT_SETTING}', true) as v) c, ${RLS_SCHEMA}.secret s
       $$`,
    `grant usage on schema ${RLS_SCHEMA} to public`,
    `grant execute on function ${RLS_SCHEMA}.current_tenant() to public`,
    `grant execute on function ${RLS_SCHEMA}.enter(text) to public`
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
