import type pg from 'pg'
import { withServer } from '../tenant-database.js'
import { misuse } from '../../misuse.js'
import {
  CENTRAL_POLICY, NOT_TENANT_TABLES, RLS_SCHEMA, TENANT_COLUMN, TENANT_POLICY,
  grantSql, installSql, lockInstall, policySql, tenantColumnSql
} from './rls-sql.js'
import { makeKeysPerTenant } from './tenant-keys.js'
import { harden } from './rls-hardening.js'
import { PG, pgCode, isUniqueViolation } from '../pg-errors.js'

/** What one table of the shared schema has of the row-level security it needs. */
export interface TableRls {
  table: string
  hasColumn: boolean
  enabled: boolean
  forced: boolean
  tenantPolicy: boolean
  centralPolicy: boolean
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
  return tables.rows.filter((r) => !NOT_TENANT_TABLES.has(r.table)).map((r) => ({
    table: r.table,
    hasColumn: r.has_column,
    enabled: r.enabled,
    forced: r.forced,
    tenantPolicy: r.policies.includes(TENANT_POLICY),
    centralPolicy: r.policies.includes(CENTRAL_POLICY)
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

/** What applyRls did. */
export interface AppliedRls {
  /** Tables given their column, policies or per-tenant keys. */
  changed: string[]
  /** Per-tenant foreign keys left NOT VALID: rows made before point at another tenant's rows. */
  unvalidated: Array<{ table: string, name: string }>
}

/**
 * Gives every table of the shared schema that lacks it the tenant key column,
 * forced RLS and the policies, makes every key of the tenant tables per tenant
 * (tenant-keys.ts), and grants the app role what it needs, in one transaction;
 * what is already right is left as it is. When the installing role may, it
 * also takes from the app role what no grant can (hardeningSql).
 */
export async function applyRls (options: ApplyRlsOptions): Promise<AppliedRls> {
  return await withServer(options.url, async (client) => {
    await client.query('begin')
    try {
      // One installer per database at a time (two instances starting together, two shared schemas).
      await lockInstall(client)
      if ((await client.query('select 1 from pg_namespace where nspname = $1', [options.schema])).rowCount === 0) throw misuse.sharedSchemaMissing(options.schema)
      for (const statement of installSql()) await client.query(statement)
      const changed = new Set<string>()
      const tables = await inspectTables(client, options.schema)
      for (const t of tables) {
        const statements: string[] = []
        if (!t.hasColumn) statements.push(...tenantColumnSql(options.schema, t.table))
        if (!isProtected(t) || !t.centralPolicy) statements.push(...policySql(options.schema, t.table, options.centralRole))
        for (const s of statements) await client.query(s)
        if (statements.length > 0) changed.add(t.table)
      }
      const keys = await makeKeysPerTenant(client, options.schema)
      for (const t of keys.changed) changed.add(t)
      if (options.appRole !== undefined) {
        for (const s of grantSql(options.schema, options.appRole)) await client.query(s)
        await harden(client, options.appRole)
      }
      await client.query('commit')
      return { changed: [...changed].sort(), unvalidated: keys.unvalidated }
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

/** The secret that signs the tenant setting, read by the owner. */
export async function readSecret (url: string): Promise<string> {
  return await withServer(url, async (client) => {
    let rows: pg.QueryResult<{ value: string }>
    try {
      rows = await client.query<{ value: string }>(`select value from ${RLS_SCHEMA}.secret`)
    } catch (error) {
      // A database no migration has reached yet: the same sentence as an empty secret table.
      if (pgCode(error) === PG.UNDEFINED_TABLE || pgCode(error) === PG.INVALID_SCHEMA_NAME) throw misuse.rlsNotInstalled()
      throw error
    }
    const value = rows.rows[0]?.value
    if (value === undefined) throw misuse.rlsNotInstalled()
    return value
  })
}

/**
 * A login role for the app: no superuser, no BYPASSRLS, no CREATEROLE, owning
 * nothing, and no TEMP on the database `url` names (the shared one). PUBLIC
 * holds TEMP on every new database, so the right is revoked from PUBLIC: a
 * temporary table named like a shared table would otherwise shadow it for
 * the next tenant on the same pooled connection. The database's owner keeps
 * TEMP; another role that needs temporary tables there gets it back with
 * `GRANT TEMPORARY ON DATABASE ... TO that_role`. Run as the database's
 * owner (or a superuser) allowed to create roles. Idempotent. For setups and
 * tests; an operator may make the role by hand instead (the plugin checks it).
 */
export async function createAppRole (url: string, role: string, password: string): Promise<void> {
  await withServer(url, async (client) => {
    const name = `"${role.replaceAll('"', '""')}"`
    const escaped = password.replaceAll("'", "''")
    const exists = (await client.query('select 1 from pg_roles where rolname = $1', [role])).rowCount === 1
    if (!exists) {
      try {
        await client.query(`create role ${name} login nosuperuser nobypassrls nocreatedb nocreaterole password '${escaped}'`)
      } catch (error) {
        // Made meanwhile by another process (two test files, two instances): the same role.
        if (pgCode(error) !== PG.DUPLICATE_OBJECT && !isUniqueViolation(error)) throw error
      }
    }
    const db = (await client.query<{ db: string }>('select quote_ident(current_database()) as db')).rows[0]?.db as string
    await client.query(`revoke temporary on database ${db} from public`)
    await client.query(`revoke temporary on database ${db} from ${name}`)
  })
}
