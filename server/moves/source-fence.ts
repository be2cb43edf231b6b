import pg from 'pg'
import { quoteIdent } from '../database/names.js'
import { withServer } from '../database/tenant-database.js'
import { waitUntil } from './wait-until.js'
import { walPosition } from './replication.js'
import { MoveStalledError } from '../errors.js'

/**
 * The fence around a tenant's source database at the switch: once it is up,
 * no connection but the mover's own reaches the database, so nothing can
 * write there any more, even an instance that has not heard of the hold yet.
 * Such an instance gets an error, never a write that is then lost. The mover
 * keeps one connection inside (to read the last WAL position and the
 * sequences) and one to the server (to close the database), both opened
 * before the hold: on a busy server a new connection takes tens of
 * milliseconds, which requests would otherwise wait for.
 */
export interface Fence {
  /** The mover's connection to the fenced database. */
  client: pg.Client
  /** Waits (up to `drainMs`) for every other connection to go, then closes the database to new ones and ends those still open. */
  raise: (drainMs: number) => Promise<void>
  close: () => Promise<void>
}

/** How often the fence looks at the database's connections while requests are held. */
const POLL_MS = 2

/** Client backends on database `name` other than `except`: what still might write there. */
async function others (c: pg.ClientBase, name: string, except: number): Promise<number> {
  const { rows } = await c.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> $2 and backend_type = \'client backend\'', [name, except])
  return rows[0]?.n ?? 0
}

async function connect (connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, application_name: 'fastify-tenancy:move' })
  client.on('error', () => {})
  await client.connect()
  return client
}

/**
 * Opens the fence's two connections around database `name` on the server at
 * `serverUrl`, without raising it. A fence left up by a crash is raised
 * again at once (the door opens only for the mover's own connection).
 */
export async function prepareFence (serverUrl: string, name: string): Promise<Fence> {
  const server = await connect(serverUrl)
  let client: pg.Client | null = null
  const close = async (): Promise<void> => {
    await client?.end().catch(() => {})
    await server.end().catch(() => {})
  }
  try {
    const wasUp = (await server.query<{ up: boolean }>('select not datallowconn as up from pg_database where datname = $1', [name])).rows[0]?.up === true
    if (wasUp) await server.query(`alter database ${quoteIdent(name)} allow_connections true`)
    const url = new URL(serverUrl)
    url.pathname = '/' + name
    client = await connect(url.toString())
    const pid = (client as unknown as { processID: number }).processID
    const raise = async (drainMs: number): Promise<void> => {
      // In-flight requests end on their own (instances close their pools once they hold the tenant); after drainMs whatever is left is ended.
      await waitUntil(async () => await others(server, name, pid) === 0 ? true : undefined, { timeoutMs: drainMs, everyMs: POLL_MS, onTimeout: () => new MoveStalledError('drain') }).catch(() => {})
      await server.query(`alter database ${quoteIdent(name)} allow_connections false`)
      await server.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> $2 and backend_type = \'client backend\'', [name, pid])
      await waitUntil(async () => await others(server, name, pid) === 0 ? true : undefined, { timeoutMs: 10_000, everyMs: POLL_MS, onTimeout: () => new MoveStalledError(`connections to the source database ${name} did not end`) })
    }
    if (wasUp) await raise(0)
    return { client, raise, close }
  } catch (error) {
    await close()
    throw error
  }
}

/**
 * A WAL position on the source that every transaction committed there so far
 * ends before, even one answered under `synchronous_commit = off`: the
 * server's insert position (`walPosition`), read first. Then one transaction
 * of our own writes a record after it and commits with `synchronous_commit =
 * on`, which flushes the WAL through that record: a logical WAL sender sends
 * only flushed WAL, so the target need not wait for the WAL writer (up to
 * wal_writer_delay), and the sender's position passes ours even when ours is
 * the start of a page (which no record end equals). The record is a
 * transactional logical message, which the subscription does not ask for: a
 * transaction that writes no WAL (an xid alone) commits asynchronously
 * whatever `synchronous_commit` says, and flushes nothing.
 */
export async function flushedPosition (client: pg.ClientBase): Promise<string> {
  const lsn = await walPosition(client)
  try {
    // One round trip: this runs while the tenant's requests are held.
    await client.query('begin; set local synchronous_commit = on; select pg_logical_emit_message(true, \'fastify_tenancy_move\', \'\'); commit')
  } catch (error) {
    await client.query('rollback').catch(() => {})
    throw error
  }
  return lsn
}

/** Takes the fence down: the source database takes connections again (a move undone). */
export async function lowerFence (serverUrl: string, name: string): Promise<void> {
  await withServer(serverUrl, async (c) => {
    const exists = (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1
    if (exists) await c.query(`alter database ${quoteIdent(name)} allow_connections true`)
  })
}
