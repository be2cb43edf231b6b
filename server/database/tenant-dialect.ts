import pg from 'pg'
import { PostgreSqlKnexDialect } from '@mikro-orm/postgresql'
import { busyError } from './connection-budget.js'
import { statementClient } from './statement-client.js'
import { schemaSetup } from './tenant-target.js'

/** How long one request (or job, or `run()`) has waited for connections so far, in ms. */
export interface RequestWait {
  spentMs: number
}

/** What a pool's knex client is told by the pool that owns it. */
export interface DialectHooks {
  /** Name of the database host (its budget, its faults). */
  readonly host: string
  /** The node-postgres Client class its connections are made with. */
  readonly Client: typeof pg.Client
  /** The bound on the time a request waits for connections, all of its waits together. */
  readonly acquireTimeoutMs: number
  /** The waits so far of the running request, or null outside one. */
  waitOf: () => RequestWait | null
  /** The error a caller gets for a failure to get a connection (connection faults become the coded 503). */
  fault: (error: Error) => Error
  /** Called with the knex client once it exists (its pool says who still waits). */
  attach: (client: TenantKnexClient) => void
}

/** The part of a knex client (and its tarn pool) the pool that owns it reads. */
export interface TenantKnexClient {
  version?: string
  pool?: { numFree: () => number, numPendingAcquires: () => number }
  releaseConnection: (connection: unknown) => Promise<void>
}

/**
 * The knex client class ("dialect") of one tenant pool, handed to MikroORM
 * through `driverOptions.client`, knex's own way to choose a client class.
 * It is MikroORM's PostgreSQL dialect, with two differences:
 *
 * - its driver is node-postgres with `hooks.Client` as the Client class, so
 *   the pool's connections are this library's (their statements carry their
 *   tenant's setup, their sockets hold a budget permit); the app's own
 *   clients and other libraries' are untouched;
 * - getting a connection is bounded once per request: every wait of a
 *   request for a connection (a busy pool, a full host, a new connection
 *   opening) counts against one `acquireTimeoutMs`, and the request then
 *   gets FST_TENANCY_BUSY; a connection that could not be opened is
 *   FST_TENANCY_DATABASE_UNAVAILABLE.
 */
/** MikroORM's PostgreSQL dialect as knex makes it: with the knex config, and the methods used here. */
type Dialect = new (config: unknown) => { acquireConnection (): Promise<unknown>, releaseConnection (connection: unknown): Promise<void>, _driver (): unknown }

export function tenantDialect (hooks: DialectHooks): typeof PostgreSqlKnexDialect {
  const convert = (error: Error): Error =>
    error?.name === 'KnexTimeoutError' ? busyError(hooks.host, hooks.acquireTimeoutMs) : hooks.fault(error)

  const Base = PostgreSqlKnexDialect as unknown as Dialect
  return class TenantDialect extends Base {
    constructor (config: unknown) {
      super(config)
      hooks.attach(this as unknown as TenantKnexClient)
    }

    override _driver (): unknown {
      // Once per knex client: node-postgres with the pool's Client class.
      return { ...pg, Client: hooks.Client }
    }

    override releaseConnection (connection: unknown): Promise<void> {
      // A transaction a route began by hand and left open ends here, not in the next lease (see statement-client.ts).
      (connection as { endLease?: () => void }).endLease?.()
      return super.releaseConnection(connection)
    }

    override acquireConnection (): Promise<unknown> {
      const wait = hooks.waitOf()
      const pool = (this as unknown as TenantKnexClient).pool
      // A free connection is no wait to bound (the usual case: no timer at all).
      if (wait === null || pool === undefined || pool.numFree() > 0) {
        return super.acquireConnection().then(undefined, (error: Error) => { throw convert(error) })
      }
      const remaining = hooks.acquireTimeoutMs - wait.spentMs
      if (remaining <= 0) return Promise.reject(busyError(hooks.host, hooks.acquireTimeoutMs))
      const started = performance.now()
      const acquiring = super.acquireConnection() as Promise<unknown>
      return new Promise((resolve, reject) => {
        let settled = false
        const settle = (): boolean => {
          if (settled) return false
          settled = true
          clearTimeout(timer)
          wait.spentMs += performance.now() - started
          return true
        }
        const timer = setTimeout(() => {
          if (!settle()) return
          reject(busyError(hooks.host, hooks.acquireTimeoutMs))
          // The connection it still waits for goes back to the pool when it comes.
          acquiring.then(async (connection) => { await (this as unknown as TenantKnexClient).releaseConnection(connection) }, () => {})
        }, remaining)
        acquiring.then((connection) => { if (settle()) resolve(connection) }, (error: Error) => { if (settle()) reject(convert(error)) })
      })
    }
  } as unknown as typeof PostgreSqlKnexDialect
}

/**
 * `driverOptions` for a short-lived MikroORM instance that works in one
 * schema (a schema tenant's migrations): each statement (each transaction)
 * runs with that schema first on its search_path, set in its own transaction.
 */
export function schemaDriverOptions (schema: string): { client: typeof PostgreSqlKnexDialect } {
  const setup = schemaSetup(schema)
  const keep = (error: Error): Error => error
  return {
    client: tenantDialect({
      host: schema,
      Client: statementClient({ setup: () => setup, reset: false, fault: keep }),
      acquireTimeoutMs: 60_000,
      waitOf: () => null,
      fault: keep,
      attach: () => {}
    })
  }
}
