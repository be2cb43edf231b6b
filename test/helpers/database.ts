import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
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
export async function freshCentral (
  t: TestContext | { after: (fn: () => Promise<void>) => void } | null, server = serverUrl()
): Promise<CentralDatabase & { drop: () => Promise<void> }> {
  const id = randomBytes(5).toString('hex')
  const name = `ft_${id}`
  const prefix = `t${id}_`
  // A copy of a central database migrated once per server (not a migration run per test).
  await sql(server, `create database "${name}" template "${await centralTemplate(server)}"`)
  const url = urlFor(name, server)
  const drop = async (): Promise<void> => { await dropDatabases(server, name, prefix) }
  t?.after(drop)
  return { url, name, prefix, drop }
}

const ROOT = new URL('../../', import.meta.url)
/** Named for the central migrations and the code that runs them, so a changed one never reuses an old template. */
const TEMPLATE_NAME = (() => {
  const hash = createHash('sha256')
  const folder = new URL('migrations/central/', ROOT)
  for (const file of readdirSync(folder).sort()) hash.update(file).update(readFileSync(new URL(file, folder)))
  for (const file of ['central.ts', 'central-database.ts', 'central-schema.ts']) hash.update(readFileSync(new URL(`server/database/${file}`, ROOT)))
  return `ft_central_template_${hash.digest('hex').slice(0, 12)}`
})()
const templates = new Map<string, Promise<string>>()

/**
 * The migrated central database fresh ones are copied from, made once per
 * server: test files running at once wait on an advisory lock for the one
 * that makes it. It is marked a template only once migrated, so one left
 * half-made (a killed run) is made again.
 */
async function centralTemplate (server: string): Promise<string> {
  let template = templates.get(server)
  if (template === undefined) {
    template = (async () => {
      const client = new pg.Client({ connectionString: server })
      await client.connect()
      try {
        await client.query('select pg_advisory_lock(hashtext($1))', [TEMPLATE_NAME])
        const found = await client.query<{ datistemplate: boolean }>('select datistemplate from pg_database where datname = $1', [TEMPLATE_NAME])
        if (found.rows[0]?.datistemplate !== true) {
          await client.query(`drop database if exists "${TEMPLATE_NAME}" with (force)`)
          await client.query(`create database "${TEMPLATE_NAME}"`)
          const orm = createCentralOrm({ url: urlFor(TEMPLATE_NAME, server) })
          try {
            await migrateCentral(orm)
          } finally {
            await orm.close(true)
          }
          await client.query(`alter database "${TEMPLATE_NAME}" with is_template true`)
        }
        return TEMPLATE_NAME
      } finally {
        await client.end()
      }
    })()
    templates.set(server, template)
    template.catch(() => templates.delete(server))
  }
  return await template
}

export async function dropDatabases (server: string, central: string, prefix: string): Promise<void> {
  const rows = await sql<{ datname: string }>(server, 'select datname from pg_database where datname = $1 or datname like $2', [central, prefix + '%'])
  for (const { datname } of rows) {
    await sql(server, `alter database "${datname}" with is_template false`).catch(() => {})
    await sql(server, `drop database if exists "${datname}" with (force)`)
  }
}
