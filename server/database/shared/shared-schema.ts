import { quoteIdent } from '../names.js'
import { runTenantMigrations, tenantMigrationStatus, withServer, type MigrationDirection } from '../tenant-database.js'
import { applyRls, inspectTables } from './rls-policies.js'
import { TENANT_COLUMN } from './rls-sql.js'
import { deletionOrder } from './tenant-keys.js'
import type { ResolvedSharedOptions } from './shared-options.js'

type Where = Pick<ResolvedSharedOptions, 'centralUrl' | 'schema' | 'centralRole'>

function migrationTarget (o: Where): { url: string, schema: string, name: string, server: string } {
  return { url: o.centralUrl, schema: o.schema, name: o.schema, server: o.centralUrl }
}

/**
 * Migrates the shared tables once for every tenant (as the central role), then
 * gives any table a migration made its tenant key and policies, and makes
 * every key per tenant (applyRls). Returns the migrations run.
 */
export async function migrateShared (o: Where & { appRole?: string }, direction: MigrationDirection = 'up'): Promise<string[]> {
  await withServer(o.centralUrl, async (c) => { await c.query(`create schema if not exists ${quoteIdent(o.schema)}`) })
  const ran = await runTenantMigrations(migrationTarget(o), direction)
  await applyRls({ url: o.centralUrl, schema: o.schema, centralRole: o.centralRole, appRole: o.appRole })
  return ran
}

/** Which migrations the shared tables have run, and which not. */
export async function sharedMigrationStatus (o: Where): Promise<{ executed: string[], pending: string[] }> {
  return await tenantMigrationStatus(migrationTarget(o))
}

/**
 * Deletes one tenant's rows from every shared table, `batch` rows per
 * statement, each its own short transaction, so deleting a big tenant never
 * holds long locks or one huge transaction. Tables go in foreign key order (a
 * table before the ones it references), so no key refuses a delete; tables
 * that reference each other (a table referencing itself, a cycle) lose the
 * tenant's rows in one statement, since a batch could leave a row another
 * batch's rows still point at. Keys are per tenant (tenant-keys.ts), so no
 * other tenant's row can point at this tenant's rows. Run as the central role.
 */
export async function deleteTenantRows (o: Where, key: string, batch: number): Promise<number> {
  return await withServer(o.centralUrl, async (c) => {
    const tables = (await inspectTables(c, o.schema)).filter((t) => t.hasColumn).map((t) => t.table)
    const name = (table: string): string => `${quoteIdent(o.schema)}.${quoteIdent(table)}`
    let removed = 0
    for (const group of await deletionOrder(c, o.schema, tables)) {
      if (group.together) {
        const deletes = group.tables.map((table, i) => `d${i} as (delete from ${name(table)} where ${TENANT_COLUMN} = $1 returning 1)`)
        const res = await c.query<{ n: number }>(`with ${deletes.join(', ')} select (${group.tables.map((_, i) => `(select count(*) from d${i})`).join(' + ')})::int as n`, [key])
        removed += res.rows[0]?.n ?? 0
        continue
      }
      const t = name(group.tables[0] as string)
      for (;;) {
        const res = await c.query(`delete from ${t} where ctid = any (array(select ctid from ${t} where ${TENANT_COLUMN} = $1 limit ${batch}))`, [key])
        removed += res.rowCount ?? 0
        if ((res.rowCount ?? 0) < batch) break
      }
    }
    return removed
  })
}
