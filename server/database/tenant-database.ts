import pg from 'pg'
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { tenantMigrations } from '../../migrations/tenant/index.js'
import { quoteIdent } from './names.js'
import { targetOrmOptions, type TenantTarget } from './tenant-target.js'
import { schemaDriverOptions } from './tenant-dialect.js'
import { TenantDatabaseMissingError } from '../errors.js'

/** Runs `fn` with a single connection to `url` (a server's maintenance database, or any database). */
export async function withServer<T> (url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  // A server going away mid-statement rejects that statement; the client's
  // 'error' event must not also become an uncaught exception (a spare being
  // cloned in the background when a host shuts down).
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export async function databaseExists (serverUrl: string, name: string): Promise<boolean> {
  return await withServer(serverUrl, async (c) => (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1)
}

/** Creates database `name` on the server, optionally as a copy of `template`. */
export async function createDatabase (serverUrl: string, name: string, template?: string): Promise<void> {
  const from = template === undefined ? '' : ` template ${quoteIdent(template)}`
  await withServer(serverUrl, async (c) => { await c.query(`create database ${quoteIdent(name)}${from}`) })
}

/** Drops database `name` if it exists, ending its open connections first. */
export async function dropDatabase (serverUrl: string, name: string): Promise<void> {
  await withServer(serverUrl, async (c) => { await c.query(`drop database if exists ${quoteIdent(name)} with (force)`) })
}

export type MigrationDirection = 'up' | 'down'

/** A short-lived MikroORM instance with the migrator, pointed at a tenant target. */
function migratorOrm (target: Pick<TenantTarget, 'url' | 'schema' | 'name'>): MikroORM {
  const orm = MikroORM.initSync({
    driver: PostgreSqlDriver,
    ...targetOrmOptions(target),
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: `fastify-tenancy:migrate:${target.name}`,
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    // A missing database is an error, never silently created (a deleted tenant stays deleted).
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: { tableName: 'fastify_tenancy_migrations', migrationsList: tenantMigrations, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    // Migrations are raw SQL: a schema tenant's run with its schema first on the search_path of each transaction.
    ...(target.schema === null ? {} : { driverOptions: schemaDriverOptions(target.schema) })
  })
  return orm
}

type MigrationTarget = Pick<TenantTarget, 'url' | 'schema' | 'name' | 'server'>

/**
 * MikroORM's migrator creates a missing database (and schema) on its own;
 * a tenant whose database is gone must get an error instead, not an empty
 * database in its name.
 */
async function assertTargetExists (target: MigrationTarget): Promise<void> {
  const exists = target.schema === null
    ? await databaseExists(target.server, target.name)
    : await withServer(target.url, async (c) => (await c.query('select 1 from pg_namespace where nspname = $1', [target.schema])).rowCount === 1)
  if (!exists) throw new TenantDatabaseMissingError(target.schema === null ? 'database' : 'schema', target.name)
}

/**
 * Runs the tenant migrations on a target: `up` to the newest (or to migration
 * `to`, a moved tenant's version), or `down` one step. Returns the names of
 * the migrations it ran.
 */
export async function runTenantMigrations (target: MigrationTarget, direction: MigrationDirection = 'up', to?: string): Promise<string[]> {
  await assertTargetExists(target)
  const orm = migratorOrm(target)
  try {
    const ran = direction === 'up' ? await orm.migrator.up(to === undefined ? undefined : { to }) : await orm.migrator.down()
    return ran.map((m) => m.name)
  } finally {
    await orm.close(true)
  }
}

/** The migrations a target has run, and the ones it has not. */
export async function tenantMigrationStatus (target: MigrationTarget): Promise<{ executed: string[], pending: string[] }> {
  await assertTargetExists(target)
  const orm = migratorOrm(target)
  try {
    const executed = (await orm.migrator.getExecutedMigrations()).map((m) => m.name)
    const pending = (await orm.migrator.getPendingMigrations()).map((m) => m.name)
    return { executed, pending }
  } finally {
    await orm.close(true)
  }
}

/** Brings database `name` on the server to the newest tenant migration (strategy `database`). */
export async function migrateTenantDatabase (serverUrl: string, name: string): Promise<string[]> {
  const url = new URL(serverUrl)
  url.pathname = '/' + name
  return await runTenantMigrations({ url: url.toString(), schema: null, name, server: serverUrl })
}
