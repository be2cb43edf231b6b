import { createHash } from 'node:crypto'
import pg from 'pg'

/**
 * PostgreSQL advisory locks in a namespace of ours. We use the two-int form
 * (`pg_advisory_xact_lock(int, int)`): the first int says what is locked, the
 * second which one. Its key space is apart from the one-bigint form, so an
 * app's own advisory locks never meet ours.
 */
export const LockSpace = {
  /** One tenant's lifecycle (create, provision, delete, migrate, rollback, seed), on the central database. */
  tenant: 0x46540001,
  /** The spare databases of one database server, on that server. */
  spares: 0x46540002,
  /** The central migrations, on the central database. */
  centralMigrations: 0x46540003,
  /** A spare being cloned under a scratch name, on its server: a scratch database whose lock is free was left by a crash. */
  scratch: 0x46540004,
  /** A tenant name (identifier or domain) being given up or taken, by bucket of names; held by the central database's own triggers (Migration20261125060001). */
  names: 0x46540005,
  /** A tenant being migrated (or, strategy `shared`, the shared tables), on the central database: held by the migrating session, so a crash frees it. */
  migrating: 0x46540006
} as const

export type LockKey = readonly [space: number, id: number]

/** The second int of a lock: 32 bits of a SHA-256 of `name` (collisions only make two unrelated operations wait for each other). */
export function lockId (name: string): number {
  return createHash('sha256').update(name).digest().readInt32BE(0)
}

/** Where a lock's connection comes from: a URL (a new connection, closed after) or a pool of warm connections. */
export type LockSource = string | pg.Pool

/**
 * Runs `fn` holding a lock, taken as a transaction-level lock in a
 * transaction of its own on a dedicated connection that spans `fn`.
 * Transaction-level, so it stays correct behind a transaction-mode pooler
 * (the pooler keeps the server connection for the whole transaction); a
 * dedicated connection, so a crash of this process ends the transaction and
 * frees the lock, and `fn` may use any other connection meanwhile. Waits
 * while another holder has it. `fn` gets the lock's connection, inside its
 * transaction, for statements that may run there; when it writes there
 * (`writesOnLock`), a failed commit undid that work and is thrown.
 */
export async function withAdvisoryLock<T> (
  source: LockSource, key: LockKey, fn: (client: pg.ClientBase) => Promise<T>, options: { writesOnLock?: boolean } = {}
): Promise<T> {
  let client: pg.ClientBase
  let done: (broken?: Error) => void
  // A pool with every connection out (slow lifecycle work, or a lock taken
  // inside another one's work) is not waited for: this lock gets a connection
  // of its own, as it would without a pool.
  const full = typeof source !== 'string' && source.idleCount === 0 && source.totalCount >= (source.options.max ?? 10)
  if (typeof source === 'string' || full) {
    const url = typeof source === 'string' ? source : source.options.connectionString as string
    const own = new pg.Client({ connectionString: url, application_name: 'fastify-tenancy:lock' })
    // A lost lock connection is reported by the next query on it; never an unhandled 'error'.
    own.on('error', () => {})
    await own.connect()
    client = own
    done = () => { own.end().catch(() => {}) }
  } else {
    const pooled = await source.connect()
    // While checked out, the pool does not listen for its errors: a connection lost mid-lock must not be an uncaught 'error'.
    const ignore = (): void => {}
    pooled.on('error', ignore)
    client = pooled
    done = (broken) => { pooled.off('error', ignore); pooled.release(broken) }
  }
  let broken: Error | undefined
  try {
    // One round trip: both ints are ours (32-bit, see lockId), so they are inlined.
    await client.query(`begin; select pg_advisory_xact_lock(${int32(key[0])}, ${int32(key[1])})`)
    let result: T
    try {
      result = await fn(client)
    } catch (error) {
      await client.query('rollback').catch((e: Error) => { broken = e })
      throw error
    }
    // Work done on other connections stands whatever happens to this one now;
    // work done on this one stands only if the commit does.
    await client.query('commit').catch((e: Error) => { broken = e })
    if (broken !== undefined && options.writesOnLock === true) throw broken
    return result
  } catch (error) {
    broken ??= error as Error
    throw error
  } finally {
    // A connection whose transaction state is unknown is closed, never given back.
    done(broken)
  }
}

/**
 * Warm connections for locks taken on the request-free but latency-visible
 * paths (a tenant's lifecycle lock, a spare claim): opening a PostgreSQL
 * connection per lock would cost more than the operation it guards. One pool
 * per URL, a few connections each, closed when idle and at `close()`.
 */
export class LockPools {
  private readonly pools = new Map<string, pg.Pool>()

  pool (url: string): pg.Pool {
    let pool = this.pools.get(url)
    if (pool === undefined) {
      pool = new pg.Pool({ connectionString: url, application_name: 'fastify-tenancy:lock', max: 8, idleTimeoutMillis: 10_000, allowExitOnIdle: true })
      // An idle connection ended by the server (a restart, a dropped database) is dropped by the pool; nothing to report.
      pool.on('error', () => {})
      this.pools.set(url, pool)
    }
    return pool
  }

  async close (): Promise<void> {
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(pools.map(async (p) => { await p.end().catch(() => {}) }))
  }
}

/** A lock key part as SQL text: always an integer literal (`| 0` keeps a 32-bit int as it is). */
function int32 (n: number): string {
  return String(n | 0)
}

/** Takes a lock if it is free; runs `fn` with it and returns true, or returns false at once when another holder has it. */
export async function withAdvisoryLockIfFree (url: string, key: LockKey, fn: () => Promise<void>): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, application_name: 'fastify-tenancy:lock' })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query('begin')
    const got = (await client.query('select pg_try_advisory_xact_lock($1, $2) as got', [key[0], key[1]])).rows[0]?.got === true
    if (got) await fn()
    await client.query('commit')
    return got
  } catch (error) {
    await client.query('rollback').catch(() => {})
    throw error
  } finally {
    await client.end().catch(() => {})
  }
}

/** The lock of one tenant's lifecycle, by its key. */
export function tenantLock (key: string): LockKey {
  return [LockSpace.tenant, lockId(key)]
}

/** A lock being held: `also` takes another lock in the same transaction, released with it. */
export interface HeldLock {
  also: (key: LockKey) => Promise<void>
}

/** Runs `fn` holding one tenant's lifecycle lock; `fn` may take more locks on the same connection (`held.also`). */
export type TenantLocker = <T>(key: string, fn: (held: HeldLock) => Promise<T>) => Promise<T>

/**
 * Tenant lifecycle locks, taken on the central database at `centralUrl`,
 * which every instance shares. Lock connections come from `pools`; nothing
 * running under a tenant lock takes another tenant lock, so its pool cannot
 * run dry in a circle.
 */
export function tenantLocker (centralUrl: string, pools: LockPools): TenantLocker {
  return async (key, fn) => await withAdvisoryLock(pools.pool(centralUrl), tenantLock(key), async (client) =>
    await fn({ also: async (more) => { await client.query(`select pg_advisory_xact_lock(${int32(more[0])}, ${int32(more[1])})`) } }))
}
