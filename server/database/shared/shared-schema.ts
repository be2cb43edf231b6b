import { quoteIdent } from '../names.js'
import { runTenantMigrations, tenantMigrationStatus, withServer, type MigrationDirection } from '../tenant-database.js'
import { applyRls, inspectTables } from './rls-policies.js'
import type { ResolvedSharedOptions } from './shared-options.js'

type Where = Pick<ResolvedSharedOptions, 'centralUrl' | 'schema' | 'centralRole'>

function migrationTarget (o: Where): { url: string, schema: string, name: string, server: string } {
  return { url: o.centralUrl, schema: o.schema, name: o.schema, server: o.centralUrl }
}

/**
 * Migrates the shared tables once for every tenant (as the central role), then
 * gives any table a migration made its tenant key, per-tenant uniques and
 * policies. Returns the migrations run.
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
 * holds long locks or one huge transaction. A table whose rows are still
 * referenced by another's is retried after the others. Run as the central role.
 */
export async function deleteTenantRows (o: Where, key: string, batch: number): Promise<number> {
  return await withServer(o.centralUrl, async (c) => {
    let pending = (await inspectTables(c, o.schema)).filter((t) => t.hasColumn).map((t) => t.table)
    let removed = 0
    for (let pass = 0; pending.length > 0; pass++) {
      const blocked: string[] = []
      for (const table of pending) {
        const t = `${quoteIdent(o.schema)}.${quoteIdent(table)}`
        try {
          for (;;) {
            const res = await c.query(`delete from ${t} where ctid = any (array(select ctid from ${t} where tenant_key = $1 limit ${batch}))`, [key])
            removed += res.rowCount ?? 0
            if ((res.rowCount ?? 0) < batch) break
          }
        } catch (error) {
          if ((error as { code?: string }).code !== '23503' || pass >= pending.length) throw error
          blocked.push(table)
        }
      }
      pending = blocked
    }
    return removed
  })
}
