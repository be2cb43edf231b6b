import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import type { EntitySchema } from '@mikro-orm/core'
import { quoteIdent } from '../names.js'
import { withServer } from '../tenant-database.js'
import type { MigrationDirection, MigrationStatus, TenantMigrator } from '../tenant-migrator.js'
import { applyRls, inspectTables } from './rls-policies.js'
import { installSql, lockInstall, TENANT_COLUMN } from './rls-sql.js'
import { deletionOrder } from './tenant-keys.js'
import type { ResolvedSharedOptions } from './shared-options.js'

type Where = Pick<ResolvedSharedOptions, 'centralUrl' | 'schema' | 'centralRole'>

function migrationTarget (o: Where): { url: string, schema: string, name: string, server: string } {
  return { url: o.centralUrl, schema: o.schema, name: o.schema, server: o.centralUrl }
}

/**
 * Migrates the shared tables once for every tenant (as the central role):
 * the same tenant migrations the other strategies run per tenant, with the
 * shared schema as each statement's search path. A migration that adds a
 * tenant table gives it its tenant key and policy with
 * `TenantMigration.tenantTable()` (so row-level security is installed
 * first); any table still without them gets them after, and every key is
 * made per tenant (applyRls). Returns the migrations run.
 */
export async function migrateShared (o: Where & { appRole?: string }, migrator: TenantMigrator, direction: MigrationDirection = 'up'): Promise<string[]> {
  await withServer(o.centralUrl, async (c) => {
    await c.query('begin')
    try {
      // One installer at a time (two instances starting together), as applyRls does.
      await lockInstall(c)
      await c.query(`create schema if not exists ${quoteIdent(o.schema)}`)
      for (const statement of installSql()) await c.query(statement)
      await c.query('commit')
    } catch (error) {
      await c.query('rollback')
      throw error
    }
  })
  const context = { schema: o.schema, centralRole: o.centralRole }
  const ran = direction === 'up' ? await migrator.up(migrationTarget(o), context) : await migrator.down(migrationTarget(o), context)
  await applyRls({ url: o.centralUrl, schema: o.schema, centralRole: o.centralRole, appRole: o.appRole })
  return ran
}

/** Which migrations the shared tables have run, and which not. */
export async function sharedMigrationStatus (o: Where, migrator: TenantMigrator): Promise<MigrationStatus> {
  return await migrator.status(migrationTarget(o))
}

/**
 * The tables of the app's tenant entities (`entities`) that the shared schema
 * does not have: no policy covers them (`tenants:rls --check` reports them).
 */
export async function missingEntityTables (url: string, schema: string, entities: Array<EntitySchema<any, any>>): Promise<string[]> {
  // The entities' table names as MikroORM maps them (discovery only, no connection).
  const orm = MikroORM.initSync({ driver: PostgreSqlDriver, clientUrl: 'postgres://discovery.invalid/none', entities, discovery: { warnWhenNoEntities: false }, contextName: 'fastify-tenancy:rls-check', allowGlobalContext: false })
  const wanted = Object.values(orm.getMetadata().getAll())
    .filter((meta) => meta.tableName !== undefined && !meta.embeddable && !meta.virtual)
    .map((meta) => meta.tableName)
  return await withServer(url, async (c) => {
    const have = new Set((await c.query<{ t: string }>(`select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p')`, [schema])).rows.map((r) => r.t))
    return [...new Set(wanted)].filter((table) => !have.has(table)).sort()
  })
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
