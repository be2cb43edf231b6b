import pg from 'pg'
import { quoteIdent } from './names.js'

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
