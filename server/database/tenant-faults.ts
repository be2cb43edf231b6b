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
 * message), and logs the detail once per fault burst and host: the first
 * fault logs a warning with the cause, the faults after it stay quiet until a
 * connection to that host succeeds again, which logs that it recovered.
 */
export class DatabaseFaults {
  private readonly options: DatabaseFaultsOptions
  /** Hosts in a burst of faults, with the faults seen since it began. */
  private readonly bursts = new Map<string, number>()

  constructor (options: DatabaseFaultsOptions) {
    this.options = options
  }

  /** The error a caller gets for `error` on `host`: the coded 503 for a connection fault, else `error` itself. */
  convert (host: string, error: Error): Error {
    if (databaseFault(error) === null) return error
    const seen = this.bursts.get(host)
    if (seen === undefined) {
      const { code, message } = error as { code?: string, message: string }
      this.options.log.warn({ host, code, cause: message }, `fastify-tenancy: tenant database host "${host}" cannot be reached (${code ?? 'no code'}: ${message}); requests get 503 FST_TENANCY_DATABASE_UNAVAILABLE until it can`)
    }
    this.bursts.set(host, (seen ?? 0) + 1)
    return databaseUnavailable(this.options.retryAfterSeconds)
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
export function databaseUnavailable (retryAfterSeconds: number): Error {
  const error = new DatabaseUnavailableError() as Error & { headers?: Record<string, string> }
  const message = error.message
  Object.defineProperty(error, 'message', { get: () => message, set: () => {}, enumerable: false, configurable: true })
  error.headers = { 'retry-after': String(Math.max(1, retryAfterSeconds)) }
  return error
}
