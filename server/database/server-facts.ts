import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { withServer } from './tenant-database.js'

/** What a database server allows, for the connection budget worked out at start. */
export interface ServerSlots {
  /** max_connections. */
  max: number
  /** superuser_reserved_connections plus reserved_connections (PostgreSQL 16+): slots a plain role never gets. */
  reserved: number
}

/** Reads how many connections `url`'s server takes from a role like ours. */
export async function serverSlots (url: string): Promise<ServerSlots> {
  return await withServer(url, async (client) => {
    const row = (await client.query<{ max: number, reserved: number }>(`select current_setting('max_connections')::int as max,
      current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0) as reserved`)).rows[0]
    return { max: row?.max ?? 100, reserved: row?.reserved ?? 3 }
  })
}

/**
 * The connection budget of one host when `database.maxConnections` is not
 * given: the server's slots a plain role can have, less the connections this
 * library keeps on it for itself (`own`: the central pool and its helpers on
 * the central database's server), split between the app's instances. At
 * least 1.
 */
export function budgetFromSlots (slots: ServerSlots, own: number, instances: number): number {
  return Math.max(1, Math.floor((slots.max - slots.reserved - own) / Math.max(1, instances)))
}

/** What the probe of a server connection's session state found. */
export interface SessionStateProbe {
  /** True when a pooler sits between (the backend's pid is not the one the server greeted the client with). */
  pooled: boolean
  /** True when a setting made in one transaction was still there in the next one on the same backend; null when no two transactions met on one backend. */
  survives: boolean | null
}

/**
 * Finds out whether a session setting made in one transaction is still
 * there in the next one that lands on the same server connection, through
 * `url`: through a transaction-mode pooler without a reset (PgBouncer's
 * server_reset_query_always), one client's session state reaches the next.
 * Two transactions are tried until both land on the same backend.
 */
export async function probeSessionState (url: string, attempts = 50): Promise<SessionStateProbe> {
  const client = new pg.Client({ connectionString: url, application_name: 'fastify-tenancy:probe' })
  client.on('error', () => {})
  await client.connect()
  try {
    const greeted = (client as unknown as { processID?: number }).processID
    const token = randomBytes(8).toString('hex')
    let pooled = false
    for (let i = 0; i < attempts; i++) {
      const set = (await client.query<{ pid: number }>("select pg_backend_pid() as pid, set_config('fastify_tenancy.probe', $1, false)", [token])).rows[0]?.pid
      if (set !== greeted) pooled = true
      if (!pooled) return { pooled: false, survives: true }
      const read = (await client.query<{ pid: number, value: string | null }>("select pg_backend_pid() as pid, current_setting('fastify_tenancy.probe', true) as value")).rows[0]
      if (read !== undefined && read.pid === set) return { pooled, survives: read.value === token }
    }
    return { pooled, survives: null }
  } finally {
    await client.end().catch(() => {})
  }
}

/** How far the database server's clock is ahead of this process's, in ms (the proofs of strategy `shared` expire by the server's). */
export async function clockOffsetMs (url: string): Promise<number> {
  return await withServer(url, async (client) => {
    const before = Date.now()
    const server = Number((await client.query<{ now: string }>('select (extract(epoch from clock_timestamp()) * 1000)::bigint::text as now')).rows[0]?.now)
    const after = Date.now()
    return Number.isFinite(server) ? server - (before + after) / 2 : 0
  })
}
