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

export async function sql<T = Record<string, any>> (url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, params)).rows as T[]
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
