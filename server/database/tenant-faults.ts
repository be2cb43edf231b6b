import type { FastifyBaseLogger } from 'fastify'
import { DatabaseUnavailableError } from '../errors.js'
import { databaseFault } from './database-faults.js'

export interface DatabaseFaultsOptions {
  log: FastifyBaseLogger
  /** Seconds a client is told to wait (Retry-After). */
  retryAfterSeconds: number
}

/**
 * Turns connection faults of tenant databases into FST_TENANCY_DATABASE_UNAVAILABLE
 * (503, Retry-After, a body without host, port, database name, SQL or driver
 * message), the driver's error kept as its cause for the one warning per
 * burst the plugin logs; a connection to that host succeeding again after
 * faults logs that it recovered.
 */
export class DatabaseFaults {
  private readonly options: DatabaseFaultsOptions
  /** Hosts in a burst of faults, with the faults seen since it began. */
  private readonly bursts = new Map<string, number>()

  constructor (options: DatabaseFaultsOptions) {
    this.options = options
  }

  /**
   * The error a caller gets for `error` on `host`: the coded 503 for a
   * connection fault (the original as its cause: the plugin's fault log
   * writes one warning per burst from it), else `error` itself.
   */
  convert (host: string, error: Error): Error {
    if (databaseFault(error) === null) return error
    this.bursts.set(host, (this.bursts.get(host) ?? 0) + 1)
    return databaseUnavailable(this.options.retryAfterSeconds, error)
  }

  /** A connection to `host` worked: ends its burst of faults, if any. */
  reached (host: string): void {
    if (this.bursts.size === 0) return
    const seen = this.bursts.get(host)
    if (seen === undefined) return
    this.bursts.delete(host)
    this.options.log.info({ host, faults: seen }, `fastify-tenancy: tenant database host "${host}" can be reached again (${seen} requests were answered 503 meanwhile)`)
  }
}

/**
 * FST_TENANCY_DATABASE_UNAVAILABLE with Retry-After. Its message is fixed:
 * knex puts the failed statement's SQL in front of the message of any error a
 * statement ends with, and that must not reach a client.
 */
export function databaseUnavailable (retryAfterSeconds: number, cause?: Error): Error {
  const error = new DatabaseUnavailableError() as Error & { headers?: Record<string, string> }
  // Not enumerable: a serializer of the whole error must not show the driver's message.
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause, enumerable: false, configurable: true })
  const message = error.message
  Object.defineProperty(error, 'message', { get: () => message, set: () => {}, enumerable: false, configurable: true })
  error.headers = { 'retry-after': String(Math.max(1, retryAfterSeconds)) }
  return error
}
