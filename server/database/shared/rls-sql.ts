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

/**
 * Taken (pg_advisory_xact_lock(hashtext(...))) by whoever installs row-level
 * security or a shared schema: one installer per database at a time, since
 * installSql grants on the one RLS schema every shared schema uses.
 */
export async function lockInstall (client: { query: (text: string) => Promise<unknown> }): Promise<void> {
  await client.query("select pg_advisory_xact_lock(hashtext('fastify-tenancy:rls'))")
}

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

/**
 * A migration helper: the SQL that makes `table` (made by a migration in the
 * shared schema) a tenant table: its tenant key column, forced RLS and the
 * policies, and its keys per tenant, with those of every other tenant table
 * (perTenantKeysSql). Call it for each new table after the tables it
 * references; `tenants:rls` does the same for every table.
 */
export function tenantTableSql (schema: string, table: string, centralRole: string): string[] {
  return [...tenantColumnSql(schema, table), ...policySql(schema, table, centralRole), perTenantKeysSql(schema)]
}

/** Tables of the schema that have the tenant key column: the tenant tables, as SQL (the schema a literal). */
export function tenantTablesSql (schemaLiteral: string): string {
  return `select c.oid from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attname = '${TENANT_COLUMN}' and not a.attisdropped
    where c.relnamespace = (select oid from pg_namespace where nspname = ${schemaLiteral}) and c.relkind in ('r', 'p')`
}

/** True (as SQL) when foreign key `k` pairs tenant_key with tenant_key. */
export const PAIRS_TENANT = `exists (select 1 from unnest(k.conkey, k.confkey) u(a, b)
    join pg_attribute x on x.attrelid = k.conrelid and x.attnum = u.a
    join pg_attribute y on y.attrelid = k.confrelid and y.attnum = u.b
    where x.attname = '${TENANT_COLUMN}' and y.attname = '${TENANT_COLUMN}')`

/** True (as SQL) when unique index `x` has tenant_key among its key columns. */
export const INDEX_HAS_TENANT = `exists (select 1 from unnest(x.indkey::int2[]) with ordinality u(a, o) join pg_attribute t on t.attrelid = x.indrelid and t.attnum = u.a
    where u.o <= x.indnkeyatts and t.attname = '${TENANT_COLUMN}')`

function literal (value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

/**
 * One statement that makes every key of the tenant tables of `schema` per
 * tenant, as inspectKeys sees them: it drops the foreign keys between tenant
 * tables that do not pair tenant_key with tenant_key, gives every primary
 * key, unique constraint and unique index tenant_key first (same names, same
 * options), and adds the foreign keys back with tenant_key on both sides. A
 * key a table outside the tenant tables references stays (reported), and so
 * do the tenant tables' foreign keys to it. The
 * foreign keys come back NOT VALID and are then validated; when rows made
 * before already point at another tenant's row, that one stays NOT VALID (it
 * holds for every new row; inspectKeys reports it), and a key left so before
 * is tried again. ON DELETE SET NULL / SET DEFAULT touch only the key's own
 * columns, never tenant_key, and MATCH FULL becomes MATCH SIMPLE (with
 * tenant_key never null, FULL would refuse a row whose own columns are null).
 * Idempotent; one statement so that a migration can run it (tenantTableSql)
 * as well as tenants:rls.
 */
export function perTenantKeysSql (schema: string): string {
  const tenant = tenantTablesSql(literal(schema))
  return `do $fastify_tenancy$
declare
  r record;
  cols text;
  refs text;
  sets text;
  adds text[] := '{}';
  stmt text;
begin
  for r in
    select k.* , to_jsonb(k) -> 'confdelsetcols' as delset from pg_constraint k
    where k.contype = 'f' and k.conparentid = 0 and k.conrelid in (${tenant}) and k.confrelid in (${tenant}) and not ${PAIRS_TENANT}
      -- Its target stays global while a table outside the tenant tables references it.
      and not exists (select 1 from pg_constraint o where o.contype = 'f' and o.conindid = k.conindid and o.conrelid not in (${tenant}))
  loop
    select string_agg(quote_ident(a.attname), ', ' order by u.o) into cols
      from unnest(r.conkey) with ordinality u(n, o) join pg_attribute a on a.attrelid = r.conrelid and a.attnum = u.n;
    select string_agg(quote_ident(a.attname), ', ' order by u.o) into refs
      from unnest(r.confkey) with ordinality u(n, o) join pg_attribute a on a.attrelid = r.confrelid and a.attnum = u.n;
    sets := cols;
    if jsonb_typeof(r.delset) = 'array' and jsonb_array_length(r.delset) > 0 then
      select string_agg(quote_ident(a.attname), ', ') into sets
        from jsonb_array_elements_text(r.delset) e(n) join pg_attribute a on a.attrelid = r.conrelid and a.attnum = e.n::int2;
    end if;
    adds := adds || format('alter table %s add constraint %I foreign key (${TENANT_COLUMN}, %s) references %s (${TENANT_COLUMN}, %s) on update %s on delete %s%s%s not valid',
      r.conrelid::regclass, r.conname, cols, r.confrelid::regclass, refs,
      case r.confupdtype when 'r' then 'restrict' when 'c' then 'cascade' when 'n' then 'set null' when 'd' then 'set default' else 'no action' end,
      case r.confdeltype when 'r' then 'restrict' when 'c' then 'cascade' when 'n' then 'set null (' || sets || ')' when 'd' then 'set default (' || sets || ')' else 'no action' end,
      case when r.condeferrable then ' deferrable' else '' end, case when r.condeferred then ' initially deferred' else '' end);
    execute format('alter table %s drop constraint %I', r.conrelid::regclass, r.conname);
  end loop;
  for r in
    select x.indexrelid, x.indrelid, k.conname, pg_get_indexdef(x.indexrelid) as idef, pg_get_constraintdef(k.oid) as cdef
    from pg_index x join pg_class c on c.oid = x.indrelid
    left join pg_constraint k on k.conindid = x.indexrelid and k.conrelid = x.indrelid and k.contype in ('p', 'u')
    where x.indrelid in (${tenant}) and not c.relispartition and x.indisunique and not ${INDEX_HAS_TENANT}
      and not exists (select 1 from pg_constraint f where f.contype = 'f' and f.conindid = x.indexrelid)
  loop
    if r.conname is not null then
      execute format('alter table %s drop constraint %I, add constraint %I %s', r.indrelid::regclass, r.conname, r.conname,
        regexp_replace(r.cdef, '^(PRIMARY KEY|UNIQUE(?: NULLS NOT DISTINCT)?) \\(', '\\1 (${TENANT_COLUMN}, '));
    else
      execute format('drop index %s', r.indexrelid::regclass);
      execute regexp_replace(r.idef, ' USING (\\w+) \\(', ' USING \\1 (${TENANT_COLUMN}, ');
    end if;
  end loop;
  foreach stmt in array adds loop execute stmt; end loop;
  for r in
    select k.conrelid, k.conname from pg_constraint k
    where k.contype = 'f' and not k.convalidated and k.conrelid in (${tenant}) and k.confrelid in (${tenant})
  loop
    begin
      execute format('alter table %s validate constraint %I', r.conrelid::regclass, r.conname);
    exception when foreign_key_violation then
      null;
    end;
  end loop;
end
$fastify_tenancy$`
}

function indexName (table: string, suffix: string): string {
  return `${table}_${suffix}`.slice(0, 63)
}
