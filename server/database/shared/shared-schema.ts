import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import type { EntitySchema } from '@mikro-orm/core'
import { quoteIdent } from '../names.js'
import { withServer } from '../tenant-database.js'
import type { MigrationDirection, MigrationStatus, TenantMigrator } from '../tenant-migrator.js'
import { applyRls, inspectTables } from './rls-policies.js'
import { installSql, lockInstall, RLS_SCHEMA, TENANT_COLUMN } from './rls-sql.js'
import { misuse } from '../../misuse.js'
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

/** What an isolated database needs to take a shared-strategy tenant's rows. */
export interface IsolatedDatabase {
  /** A database of its own, or a schema of its own in the shared tables' database. */
  kind: 'database' | 'schema'
  /** The server's maintenance database (the host's URL), and the isolated database's name there. */
  serverUrl: string
  name: string
  /** The isolated database, reached as its owner. */
  ownerUrl: string
  /** The schema the tenant's tables go in: one named like the shared one (a database), or its own (a schema). */
  schema: string
  centralRole: string
  appRole: string
  /** The shared tables' secret: the app's proofs must hold in both places. */
  secret: string
  /** The migrations the shared tables have run: the isolated tables are made at the same version. */
  executed: readonly string[]
}

/**
 * Readies a new database (or schema) for one shared-strategy tenant: the shared tables'
 * shape (schema, row-level security, `tenant_key`, per-tenant keys, the app
 * role's grants) at the shared tables' migration version, with the shared
 * secret, so the proofs the app signs hold there too. The tables are left
 * empty: the rows come after (replication or a copy). Idempotent.
 */
export async function prepareIsolated (db: IsolatedDatabase, migrator: Pick<TenantMigrator, 'names' | 'up'>): Promise<void> {
  // A schema of its own in the shared tables' database has their roles, owner and secret already.
  if (db.kind === 'database') await ownDatabase(db)
  await withServer(db.ownerUrl, async (c) => {
    await c.query('begin')
    try {
      await lockInstall(c)
      await c.query(`create schema if not exists ${quoteIdent(db.schema)}`)
      await c.query('commit')
    } catch (error) {
      await c.query('rollback').catch(() => {})
      throw error
    }
  })
  const names = await migrator.names()
  const last = names.filter((name) => db.executed.includes(name)).at(-1)
  const target = { url: db.ownerUrl, schema: db.schema, name: db.schema, server: db.ownerUrl }
  if (last !== undefined) await migrator.up(target, { schema: db.schema, centralRole: db.centralRole }, last)
  await applyRls({ url: db.ownerUrl, schema: db.schema, centralRole: db.centralRole, appRole: db.appRole })
  // Whatever a migration inserted goes: the tenant's rows come from where it was.
  await withServer(db.ownerUrl, async (c) => {
    const tables = (await inspectTables(c, db.schema)).map((t) => `${quoteIdent(db.schema)}.${quoteIdent(t.table)}`)
    if (tables.length > 0) await c.query(`truncate ${tables.join(', ')}`)
  })
}

/** An isolated database's roles, owner, row-level security and the shared secret. */
async function ownDatabase (db: IsolatedDatabase): Promise<void> {
  await withServer(db.serverUrl, async (c) => {
    const roles = (await c.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1::text[])', [[db.centralRole, db.appRole]])).rows.map((r) => r.rolname)
    const missing = [db.centralRole, db.appRole].filter((role) => !roles.includes(role))
    if (missing.length > 0) throw misuse.isolatedRolesMissing(missing)
    // The central role owns the shared tables' database; it owns this one too (its schema, tables and policies).
    await c.query(`alter database ${quoteIdent(db.name)} owner to ${quoteIdent(db.centralRole)}`)
    // As in the shared tables' database (createAppRole): no temporary table for the app role to shadow a tenant table with.
    await c.query(`revoke temporary on database ${quoteIdent(db.name)} from public`)
  })
  await withServer(db.ownerUrl, async (c) => {
    await c.query('begin')
    try {
      await lockInstall(c)
      await c.query(`create schema if not exists ${quoteIdent(db.schema)}`)
      for (const statement of installSql()) await c.query(statement)
      // The shared secret replaces the one just made; the install again works out its HMAC pads.
      await c.query(`update ${RLS_SCHEMA}.secret set value = $1, ikey = null, okey = null where value <> $1`, [db.secret])
      for (const statement of installSql()) await c.query(statement)
      await c.query('commit')
    } catch (error) {
      await c.query('rollback').catch(() => {})
      throw error
    }
  })
}
