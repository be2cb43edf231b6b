import type { DatabaseStrategy } from '../database/strategy.js'
import type { TenantTarget } from '../database/tenant-target.js'
import type pg from 'pg'
import { quoteIdent } from '../database/names.js'
import { createDatabase, withServer } from '../database/tenant-database.js'
import type { TenantMigrator } from '../database/tenant-migrator.js'
import { SchemaTooNewError } from '../errors.js'
import { tenantTables } from './replication.js'

/** The tenant migrations a source has run, refusing any this app does not have (its tables would not exist on the target). */
export async function checkVersion (migrator: Pick<TenantMigrator, 'names'>, executed: readonly string[]): Promise<string[]> {
  const known = new Set(await migrator.names())
  const unknown = executed.find((name) => !known.has(name))
  if (unknown !== undefined) throw new SchemaTooNewError(unknown)
  return [...executed]
}

/**
 * Makes the tenant's database (or schema) on the target at the source's
 * migration version, with empty tables: from the template when the source is
 * at the newest migration, else by running the migrations up to the source's
 * last. A copy of the same name left there (a crash, a kept source of an
 * earlier move) is replaced. The rows come afterwards (replication, a COPY, a
 * bundle), so whatever a migration inserted is removed.
 */
export async function makeTargetAt (strategy: Pick<DatabaseStrategy, 'kind' | 'exists' | 'create' | 'drop'>, migrator: Pick<TenantMigrator, 'names' | 'up'>, target: TenantTarget, executed: readonly string[]): Promise<void> {
  await checkVersion(migrator, executed)
  if (await strategy.exists(target)) await strategy.drop(target)
  const names = await migrator.names()
  const newest = names.every((name) => executed.includes(name))
  const last = names.filter((name) => executed.includes(name)).at(-1)
  if (newest || strategy.kind !== 'database') {
    const { fromTemplate } = await strategy.create(target)
    if (!fromTemplate && last !== undefined) await migrator.up(target, undefined, last)
  } else {
    await createDatabase(target.server, target.name)
    if (last !== undefined) await migrator.up(target, undefined, last)
  }
  await withServer(target.url, async (c) => {
    const tables = await tenantTables(c, target.schema)
    if (tables.length > 0) await c.query(`truncate ${tables.map((t) => t.quoted).join(', ')}`)
  })
}

/** The migrations a tenant's database (or schema `schema`) has run, read through `client` (the source may be fenced). */
export async function executedMigrations (client: pg.ClientBase, schema: string | null): Promise<string[]> {
  const table = schema === null ? 'fastify_tenancy_migrations' : `${quoteIdent(schema)}.fastify_tenancy_migrations`
  const exists = (await client.query('select to_regclass($1) is not null as present', [table])).rows[0]?.present === true
  if (!exists) return []
  return (await client.query<{ name: string }>(`select name from ${table} order by id`)).rows.map((r) => r.name)
}
