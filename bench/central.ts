import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createCentralOrm, migrateCentral } from '../server/database/central.js'

/** A fresh central database for one benchmark, and a function that drops it with every tenant database it made. */
export async function benchCentral (serverUrl: string): Promise<{ url: string, prefix: string, drop: () => Promise<void> }> {
  const id = randomBytes(4).toString('hex')
  const name = `bench_${id}`
  const prefix = `b${id}_`
  const admin = async (sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> => {
    const c = new pg.Client({ connectionString: serverUrl })
    await c.connect()
    try { return (await c.query(sql, params)).rows } finally { await c.end() }
  }
  await admin(`create database "${name}"`)
  const url = new URL(serverUrl)
  url.pathname = '/' + name
  const orm = createCentralOrm({ url: url.toString() })
  await migrateCentral(orm)
  await orm.close(true)
  return {
    url: url.toString(),
    prefix,
    drop: async () => {
      const rows = await admin('select datname from pg_database where datname = $1 or starts_with(datname, $2)', [name, prefix])
      for (const { datname } of rows) {
        await admin(`alter database "${datname}" with is_template false`).catch(() => {})
        await admin(`drop database if exists "${datname}" with (force)`)
      }
    }
  }
}
