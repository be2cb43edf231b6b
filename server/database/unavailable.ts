import { DatabaseUnavailableError } from '../errors.js'
import { databaseFault, type DatabaseFault } from './database-faults.js'

/** Retry-After of FST_TENANCY_DATABASE_UNAVAILABLE, in seconds: a restart or a failover takes a few. */
export const UNAVAILABLE_RETRY_SECONDS = 5

const CODE = 'FST_TENANCY_DATABASE_UNAVAILABLE'
const template = new DatabaseUnavailableError()

/** What a client is told: the code, the generic sentence, nothing about where or why. */
export interface UnavailableBody {
  statusCode: 503
  code: typeof CODE
  error: 'Service Unavailable'
  message: string
}

export const UNAVAILABLE_BODY: UnavailableBody = Object.freeze({ statusCode: 503, code: CODE, error: 'Service Unavailable', message: template.message })
export const UNAVAILABLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'retry-after': String(UNAVAILABLE_RETRY_SECONDS), 'cache-control': 'no-store' })

/**
 * The fault an error stands for, when it is one a client should see as
 * FST_TENANCY_DATABASE_UNAVAILABLE: a driver's connection failure, or our
 * own coded error (made by the connection layer; its cause has the detail).
 */
export function unavailableFault (error: unknown): DatabaseFault | null {
  if ((error as { code?: unknown } | null)?.code === CODE) {
    const cause = (error as { cause?: unknown }).cause
    return databaseFault(cause) ?? { kind: 'unreachable', code: CODE, address: null, detail: String((error as Error).message) }
  }
  return databaseFault(error)
}

/**
 * Turns an error in place into FST_TENANCY_DATABASE_UNAVAILABLE as any error
 * handler serializes it (status 503, the code, the generic message,
 * Retry-After in `headers`), so the driver's message, address, database name
 * or SQL reach no response body. The original stays in the log once (see FaultLog).
 */
export function asUnavailable (error: Error): Error {
  try {
    Object.assign(error, { statusCode: 503, status: 503, code: CODE, message: UNAVAILABLE_BODY.message, headers: { ...UNAVAILABLE_HEADERS } })
    // Fields some drivers add, which a serializer of the whole error would show.
    for (const field of ['sql', 'sqlMessage', 'detail', 'hint', 'where', 'query', 'address', 'port', 'hostname', 'errors', 'previous']) {
      if (Object.prototype.hasOwnProperty.call(error, field)) delete (error as unknown as Record<string, unknown>)[field]
    }
  } catch {}
  return error
}
