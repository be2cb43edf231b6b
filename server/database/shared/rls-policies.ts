import type pg from 'pg'
import { withServer } from '../tenant-database.js'
import { MisconfigurationError } from '../../errors.js'
import {
  CENTRAL_POLICY, NOT_TENANT_TABLES, PER_TENANT_PRIMARY_KEYS, RLS_SCHEMA, TENANT_COLUMN, TENANT_POLICY,
  grantSql, installSql, perTenantPrimaryKeySql, perTenantUniqueSql, policySql, tenantColumnSql
} from './rls-sql.js'

/** What one table of the shared schema has of the row-level security it needs. */
export interface TableRls {
  table: string
  hasColumn: boolean
  enabled: boolean
  forced: boolean
  tenantPolicy: boolean
  centralPolicy: boolean
  /** Unique constraints that do not include the tenant key (unique across tenants, which leaks existence and blocks tenants). */
  globalUniques: Array<{ name: string, columns: string[] }>
}

/** True when the table is held by RLS the way strategy `shared` needs. */
export function isProtected (t: TableRls): boolean {
  return t.hasColumn && t.enabled && t.forced && t.tenantPolicy
}

/** Reads, for every tenant table of `schema`, what it has of its row-level security. */
export async function inspectTables (client: pg.Client, schema: string): Promise<TableRls[]> {
  const tables = await client.query<{ table: string, enabled: boolean, forced: boolean, has_column: boolean, policies: string[] }>(`
    select c.relname as table, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = $2 and not a.attisdropped) as has_column,
      coalesce((select array_agg(p.polname::text) from pg_policy p where p.polrelid = c.oid), '{}') as policies
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind in ('r', 'p')
    order by c.relname`, [schema, TENANT_COLUMN])
  const uniques = await client.query<{ table: string, name: string, columns: string[] }>(`
    select c.relname as table, k.conname as name,
      array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i) join pg_attribute a on a.attrelid = c.oid and a.attnum = u.n order by u.i) as columns
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and k.contype = 'u'`, [schema])
  return tables.rows.filter((r) => !NOT_TENANT_TABLES.has(r.table)).map((r) => ({
    table: r.table,
    hasColumn: r.has_column,
    enabled: r.enabled,
    forced: r.forced,
    tenantPolicy: r.policies.includes(TENANT_POLICY),
    centralPolicy: r.policies.includes(CENTRAL_POLICY),
    globalUniques: uniques.rows.filter((u) => u.table === r.table && !u.columns.includes(TENANT_COLUMN)).map((u) => ({ name: u.name, columns: u.columns }))
  }))
}

export interface ApplyRlsOptions {
  /** Owner (central role) URL of the shared database. */
  url: string
  schema: string
  /** The role that may cross tenants. */
  centralRole: string
  /** The app role, given the grants it needs (and no more); optional. */
  appRole?: string
}

/**
 * Gives every table of the shared schema that lacks it the tenant key column,
 * per-tenant uniques, forced RLS and the policies, in one transaction; tables
 * already protected are left as they are. Returns the tables it changed.
 */
export async function applyRls (options: ApplyRlsOptions): Promise<string[]> {
  return await withServer(options.url, async (client) => {
    await client.query('begin')
    try {
      // One installer at a time (two instances starting together).
      await client.query('select pg_advisory_xact_lock(hashtext($1))', [`fastify-tenancy:rls:${options.schema}`])
      for (const statement of installSql()) await client.query(statement)
      const changed: string[] = []
      for (const t of await inspectTables(client, options.schema)) {
        const statements: string[] = []
        if (!t.hasColumn) statements.push(...tenantColumnSql(options.schema, t.table))
        const key = PER_TENANT_PRIMARY_KEYS[t.table]
        if (!t.hasColumn && key !== undefined) statements.push(...perTenantPrimaryKeySql(options.schema, t.table, key))
        for (const u of t.globalUniques) statements.push(...perTenantUniqueSql(options.schema, t.table, u.name, u.columns))
        if (!isProtected(t) || !t.centralPolicy) statements.push(...policySql(options.schema, t.table, options.centralRole))
        for (const s of statements) await client.query(s)
        if (statements.length > 0) changed.push(t.table)
      }
      if (options.appRole !== undefined) for (const s of grantSql(options.schema, options.appRole)) await client.query(s)
      await client.query('commit')
      return changed
    } catch (error) {
      await client.query('rollback')
      throw error
    }
  })
}

/** Tenant tables of the schema without their policy (or without RLS forced): what `tenants:rls --check` reports. */
export async function unprotectedTables (url: string, schema: string): Promise<string[]> {
  return await withServer(url, async (client) => (await inspectTables(client, schema)).filter((t) => !isProtected(t)).map((t) => t.table))
}

/** What makes a role unfit to be the app role: it would see across tenants. */
export interface RoleFacts {
  role: string
  superuser: boolean
  bypassRls: boolean
  /** Tenant tables it owns (an owner may turn RLS off). */
  owns: string[]
}

/** Reads the role `url` connects as, and what it owns in the schema. */
export async function roleFacts (url: string, schema: string): Promise<RoleFacts> {
  return await withServer(url, async (client) => {
    const me = (await client.query<{ role: string, superuser: boolean, bypass: boolean }>(
      'select current_user as role, rolsuper as superuser, rolbypassrls as bypass from pg_roles where rolname = current_user')).rows[0]
    const owned = await client.query<{ table: string }>(`
      select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p') and pg_has_role(current_user, c.relowner, 'USAGE')`, [schema])
    return {
      role: me?.role ?? '?',
      superuser: me?.superuser ?? false,
      bypassRls: me?.bypass ?? false,
      owns: owned.rows.map((r) => r.table).filter((t) => !NOT_TENANT_TABLES.has(t))
    }
  })
}

/** The secret that signs the tenant setting, read by the owner. */
export async function readSecret (url: string): Promise<string> {
  return await withServer(url, async (client) => {
    const rows = await client.query<{ value: string }>(`select value from ${RLS_SCHEMA}.secret`)
    const value = rows.rows[0]?.value
    if (value === undefined) throw new MisconfigurationError('Row-level security is not installed in the shared database: run `fastify-tenancy tenants:rls` (or app.tenancy.migrate()) first.')
    return value
  })
}

/**
 * A login role for the app: no superuser, no BYPASSRLS, no CREATEROLE, owning
 * nothing. Needs a role allowed to create roles. For setups and tests; an
 * operator may make the role by hand instead.
 */
export async function createAppRole (url: string, role: string, password: string): Promise<void> {
  await withServer(url, async (client) => {
    const exists = (await client.query('select 1 from pg_roles where rolname = $1', [role])).rowCount === 1
    const escaped = password.replaceAll("'", "''")
    if (!exists) await client.query(`create role "${role.replaceAll('"', '')}" login nosuperuser nobypassrls nocreatedb nocreaterole password '${escaped}'`)
  })
}
