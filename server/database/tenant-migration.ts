import { Migration } from '@mikro-orm/migrations'
import { TENANT_COLUMN, tenantTableSql } from './shared/rls-sql.js'
import { sharedMigrationContext } from './tenant-migrator.js'

/**
 * A tenant migration that runs in every strategy. In strategy `shared`, where
 * every tenant's rows share one set of tables, a migration that adds a tenant
 * table calls `this.tenantTable('invoices')` after creating it: the table
 * gets its `tenant_key` column (defaulting to the statement's tenant), the
 * index on it, and forced row-level security with the tenant's policy, from
 * the same SQL `fastify-tenancy tenants:rls` uses. In strategies `database`
 * and `schema` the call adds nothing. `fastify-tenancy migration:create`
 * writes migrations of this kind for an app in strategy `shared`.
 */
export abstract class TenantMigration extends Migration {
  /** Strategy `shared`: makes `table` (created by this migration) a tenant table; elsewhere nothing. */
  protected tenantTable (table: string): void {
    const shared = sharedMigrationContext(this.config)
    if (shared === undefined) return
    for (const statement of tenantTableSql(shared.schema, table, shared.centralRole)) this.addSql(statement)
  }

  /**
   * A key added to a tenant table (`alter table … add constraint … unique
   * (…)`, `primary key (…)` or `foreign key (…) references …`, `create unique
   * index … (…)`): in strategy `shared` the tenant key comes first among its
   * columns, so it holds per tenant from the start (a unique over every
   * tenant's rows would refuse a value another tenant has; a foreign key to
   * `id` alone finds no key to reference, since tenant tables' keys start
   * with the tenant key, and would let a row point at another tenant's row);
   * elsewhere the statement as it is. `migration:create` writes such keys
   * this way in strategy `shared`.
   */
  protected perTenant (sql: string): void {
    const shared = sharedMigrationContext(this.config)
    this.addSql(shared === undefined ? sql : keyPerTenant(sql))
  }
}

/** A statement that adds a unique key: matches up to its column list's opening parenthesis. */
const KEY_STATEMENT = /^(\s*(?:alter\s+table\s+.+?\s+add\s+(?:constraint\s+(?:"[^"]+"|\S+)\s+)?(?:unique|primary\s+key)(?:\s+nulls\s+(?:not\s+)?distinct)?|create\s+unique\s+index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(?:"[^"]+"|\S+)\s+on\s+(?:only\s+)?.+?(?:\s+using\s+\w+)?)\s*\()/is

/** A statement that adds a foreign key: its columns, the table it references, that table's columns, and what follows. */
const FOREIGN_KEY_STATEMENT = /^(\s*alter\s+table\s+.+?\s+add\s+(?:constraint\s+(?:"[^"]+"|\S+)\s+)?foreign\s+key\s*\()([^)]*)(\)\s*references\s+(?:(?:"[^"]+"|[^\s("]+)\.)?(?:"[^"]+"|[^\s("]+)\s*\()([^)]*)\)(.*)$/is

const HAS_TENANT = new RegExp(`(^|,)\\s*"?${TENANT_COLUMN}"?\\s*(,|$)`)

/** Whether a statement adds a key or a foreign key to a table (what `perTenant` rewrites). */
export function addsKey (sql: string): boolean {
  return KEY_STATEMENT.test(sql) || FOREIGN_KEY_STATEMENT.test(sql)
}

/** The statement with the tenant key first among the key's columns (on both sides of a foreign key); any other statement unchanged. */
export function keyPerTenant (sql: string): string {
  const fk = FOREIGN_KEY_STATEMENT.exec(sql)
  if (fk !== null) {
    const [, head, columns, references, referenced, rest] = fk as unknown as [string, string, string, string, string, string]
    if (HAS_TENANT.test(columns)) return sql
    // SET NULL / SET DEFAULT on delete touch the key's own columns only (tenant_key is never null); MATCH FULL would
    // refuse a row whose own columns are null, tenant_key never being so.
    const actions = rest
      .replace(/\bon\s+delete\s+set\s+(null|default)\b(?!\s*\()/i, (_m, what: string) => `on delete set ${what} (${columns.trim()})`)
      .replace(/\s+match\s+full\b/i, '')
    return `${head}"${TENANT_COLUMN}", ${columns.trim()}${references}"${TENANT_COLUMN}", ${referenced.trim()})${actions}`
  }
  const m = KEY_STATEMENT.exec(sql)
  if (m === null) return sql
  const rest = sql.slice(m[0].length)
  if (new RegExp(`^\\s*"?${TENANT_COLUMN}"?\\s*[,)]`).test(rest)) return sql
  return `${m[0]}"${TENANT_COLUMN}", ${rest}`
}
