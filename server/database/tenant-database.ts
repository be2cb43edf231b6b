import pg from 'pg'
import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { tenantMigrations } from '../../migrations/tenant/index.js'
import { quoteIdent, databaseUrl } from './names.js'

/** Runs `fn` with a single connection to the server's maintenance database. */
export async function withServer<T> (serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl })
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

/** Brings a tenant database to the newest tenant migration; returns the names it ran. */
export async function migrateTenantDatabase (serverUrl: string, name: string): Promise<string[]> {
  const orm = MikroORM.initSync({
    clientUrl: databaseUrl(serverUrl, name),
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: `fastify-tenancy:migrate:${name}`,
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    extensions: [Migrator],
    migrations: { tableName: 'fastify_tenancy_migrations', migrationsList: tenantMigrations, transactional: true, allOrNothing: true, snapshot: false, silent: true }
  })
  try {
    return (await orm.migrator.up()).map((m) => m.name)
  } finally {
    await orm.close(true)
  }
}
