import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { createCentralOrm, migrateCentral } from '../../server/database/central.js'

/** URL of the PostgreSQL server the tests use (test/run.ts sets it). */
export function serverUrl (): string {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') throw new Error('DATABASE_URL is not set: run the tests with npm test.')
  return url
}

export function urlFor (database: string, server = serverUrl()): string {
  const url = new URL(server)
  url.pathname = '/' + database
  return url.toString()
}

/**
 * Runs `text` on a new connection to `url`. A tenant view's URL (helpers/
 * shared.ts) runs it in a transaction that first proves the view's tenant,
 * as the app's shared pool does.
 */
export async function sql<T = Record<string, any>> (url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const u = new URL(url)
  const view = u.searchParams.get('fastify_tenancy_view')
  u.searchParams.delete('fastify_tenancy_view')
  const client = new pg.Client({ connectionString: u.toString() })
  await client.connect()
  try {
    if (view === null) return (await client.query(text, params)).rows as T[]
    const [proof, schema] = view.split(',') as [string, string]
    await client.query('begin')
    await client.query("select fastify_tenancy_rls.enter($1), set_config('search_path', $2, true)", [proof, `"${schema}", pg_temp`])
    const result = await client.query(text, params)
    await client.query('commit')
    // A text of several statements gives one result each: the last is what the tests read.
    return (Array.isArray(result) ? result[result.length - 1].rows : result.rows) as T[]
  } finally {
    await client.end()
  }
}

export interface CentralDatabase {
  /** URL of the fresh central database. */
  url: string
  name: string
  /** Prefix for this test's tenant databases, so test files never share one. */
  prefix: string
}

/**
 * A new central database at the newest migration, with its own tenant
 * database prefix; dropped with every tenant database it made when the test ends.
 */
export async function freshCentral (t: TestContext | { after: (fn: () => Promise<void>) => void } | null, server = serverUrl()): Promise<CentralDatabase & { drop: () => Promise<void> }> {
  const id = randomBytes(5).toString('hex')
  const name = `ft_${id}`
  const prefix = `t${id}_`
  await sql(server, `create database "${name}"`)
  const url = urlFor(name, server)
  const orm = createCentralOrm({ url })
  await migrateCentral(orm)
  await orm.close(true)
  const drop = async (): Promise<void> => { await dropDatabases(server, name, prefix) }
  t?.after(drop)
  return { url, name, prefix, drop }
}

export async function dropDatabases (server: string, central: string, prefix: string): Promise<void> {
  const rows = await sql<{ datname: string }>(server, 'select datname from pg_database where datname = $1 or datname like $2', [central, prefix + '%'])
  for (const { datname } of rows) {
    await sql(server, `alter database "${datname}" with is_template false`).catch(() => {})
    await sql(server, `drop database if exists "${datname}" with (force)`)
  }
}
