import pg from 'pg'
import { quoteIdent } from '../database/names.js'
import { withServer } from '../database/tenant-database.js'
import { waitUntil } from './wait-until.js'
import { MoveStalledError } from '../errors.js'

/**
 * The fence around a tenant's source database at the switch: once it is up,
 * no connection but the mover's own reaches the database, so nothing can
 * write there any more, even an instance that has not heard of the hold yet.
 * Such an instance gets an error, never a write that is then lost. The mover
 * keeps one connection inside (to read the last WAL position and the
 * sequences), opened before the database closes.
 */
export interface Fence {
  /** The mover's connection to the fenced database. */
  client: pg.Client
  close: () => Promise<void>
}

/** Client backends on database `name` other than `except`: what still might write there. */
async function others (c: pg.ClientBase, name: string, except: number): Promise<number> {
  const { rows } = await c.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> $2 and backend_type = \'client backend\'', [name, except])
  return rows[0]?.n ?? 0
}

/**
 * Raises the fence around database `name` on the server at `serverUrl`: the
 * mover connects, waits (up to `drainMs`) for every other connection to go
 * (instances close theirs once they hold the tenant and its requests end),
 * closes the database to new connections and ends those still open.
 */
export async function raiseFence (serverUrl: string, name: string, drainMs: number): Promise<Fence> {
  return await withServer(serverUrl, async (server) => {
    // A fence left up by a crash: open the door for the mover's own connection, then close it again.
    await server.query(`alter database ${quoteIdent(name)} allow_connections true`)
    const url = new URL(serverUrl)
    url.pathname = '/' + name
    const client = new pg.Client({ connectionString: url.toString(), application_name: 'fastify-tenancy:move' })
    client.on('error', () => {})
    await client.connect()
    try {
      const pid = (client as unknown as { processID: number }).processID
      // In-flight requests end on their own; after drainMs whatever is left is ended.
      await waitUntil(async () => await others(server, name, pid) === 0 ? true : undefined, { timeoutMs: drainMs, everyMs: 5, onTimeout: () => new MoveStalledError('drain') }).catch(() => {})
      await server.query(`alter database ${quoteIdent(name)} allow_connections false`)
      await server.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> $2 and backend_type = \'client backend\'', [name, pid])
      await waitUntil(async () => await others(server, name, pid) === 0 ? true : undefined, { timeoutMs: 10_000, everyMs: 5, onTimeout: () => new MoveStalledError(`connections to the source database ${name} did not end`) })
    } catch (error) {
      await client.end().catch(() => {})
      throw error
    }
    return { client, close: async () => { await client.end().catch(() => {}) } }
  })
}

/** Takes the fence down: the source database takes connections again (a move undone). */
export async function lowerFence (serverUrl: string, name: string): Promise<void> {
  await withServer(serverUrl, async (c) => {
    const exists = (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1
    if (exists) await c.query(`alter database ${quoteIdent(name)} allow_connections true`)
  })
}
