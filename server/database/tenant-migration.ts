import { Migration } from '@mikro-orm/migrations'
import { tenantTableSql } from './shared/rls-sql.js'
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
}
