import { PG } from './pg-errors.js'

/**
 * What kind of "the database cannot be used right now" an error is, read from
 * the error node-postgres, knex or MikroORM raised (MikroORM copies the
 * driver's fields onto its own exception). Everything else is null: a SQL
 * error, a constraint, a bug, a full pool (that is FST_TENANCY_BUSY).
 */
export type DatabaseFaultKind =
  /** Nothing answers at the address (refused, unreachable, timed out). */
  | 'unreachable'
  /** The host name does not resolve. */
  | 'unknown-host'
  /** PostgreSQL refused the login (password, pg_hba, role). */
  | 'login-refused'
  /** The database named in the URL does not exist. */
  | 'database-missing'
  /** PostgreSQL is starting up, shutting down or in recovery, or ended the session (a restart). */
  | 'restarting'
  /** The connection broke in the middle. */
  | 'connection-lost'
  /** PostgreSQL has no connection slot left. */
  | 'too-many-connections'
  /** The database takes no new connections for now (`ALLOW_CONNECTIONS false`, as a move's fence of its source sets). */
  | 'closed'

export interface DatabaseFault {
  kind: DatabaseFaultKind
  /** The driver's code (ECONNREFUSED, 28P01, …) or a short tag for pg's messages without one. */
  code: string
  /** Where it tried, when the error says (`127.0.0.1:5432`, or the host name that did not resolve). */
  address: string | null
  /** The driver's own message: for the log and the operator, never for a response body. */
  detail: string
}

const NETWORK: Record<string, DatabaseFaultKind> = {
  // Our own SCRAM login (login-socket.ts) closed a connection whose server broke the exchange.
  FST_TENANCY_DATABASE_LOGIN_FAILED: 'login-refused',
  ECONNREFUSED: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ETIMEDOUT: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENOTFOUND: 'unknown-host',
  EAI_AGAIN: 'unknown-host',
  EAI_NONAME: 'unknown-host',
  ECONNRESET: 'connection-lost',
  EPIPE: 'connection-lost',
  ECONNABORTED: 'connection-lost'
}

/** SQLSTATEs of faults (class 08 is every connection exception). */
const SQLSTATE: Record<string, DatabaseFaultKind> = {
  [PG.INVALID_PASSWORD]: 'login-refused',
  [PG.INVALID_AUTHORIZATION]: 'login-refused',
  [PG.INVALID_CATALOG_NAME]: 'database-missing',
  [PG.ADMIN_SHUTDOWN]: 'restarting',
  [PG.CRASH_SHUTDOWN]: 'restarting',
  [PG.CANNOT_CONNECT_NOW]: 'restarting',
  [PG.TOO_MANY_CONNECTIONS]: 'too-many-connections',
  [PG.OUT_OF_MEMORY]: 'too-many-connections'
}

/**
 * node-postgres's own messages, which carry no code; MikroORM and knex put
 * the SQL in front (`<sql> - <message>`).
 */
const MESSAGES: Array<[RegExp, DatabaseFaultKind, string]> = [
  [/(?:^| - )Connection terminated due to connection timeout/, 'unreachable', 'CONNECT_TIMEOUT'],
  [/(?:^| - )Connection terminated/, 'connection-lost', 'CONNECTION_TERMINATED'],
  [/(?:^| - )Connection ended unexpectedly/, 'connection-lost', 'CONNECTION_TERMINATED'],
  [/(?:^| - )timeout expired/, 'unreachable', 'CONNECT_TIMEOUT'],
  [/(?:^| - )Client has encountered a connection error and is not queryable/, 'connection-lost', 'CLIENT_BROKEN'],
  [/(?:^| - )Client was closed and is not queryable/, 'connection-lost', 'CLIENT_CLOSED']
]

interface ErrorLike {
  message?: unknown
  code?: unknown
  address?: unknown
  port?: unknown
  hostname?: unknown
  errors?: unknown
  cause?: unknown
  previous?: unknown
}

/** The fault an error stands for, looking through the errors it wraps (AggregateError, cause); null when it is none. */
export function databaseFault (error: unknown): DatabaseFault | null {
  const seen = new Set<unknown>()
  const queue: unknown[] = [error]
  while (queue.length > 0) {
    const e = queue.shift()
    if (typeof e !== 'object' || e === null || seen.has(e)) continue
    seen.add(e)
    const fault = faultOf(e as ErrorLike)
    if (fault !== null) return fault
    const like = e as ErrorLike
    if (Array.isArray(like.errors)) queue.push(...like.errors)
    queue.push(like.cause, like.previous)
  }
  return null
}

function faultOf (e: ErrorLike): DatabaseFault | null {
  const code = typeof e.code === 'string' ? e.code : typeof e.code === 'number' ? String(e.code) : ''
  const detail = typeof e.message === 'string' ? e.message : ''
  const kind = NETWORK[code] ?? SQLSTATE[code] ?? (code.startsWith('08') && code.length === 5 ? 'connection-lost' : undefined)
  if (kind !== undefined) return { kind, code, address: addressOf(e), detail }
  // 55000 is also raised by bugs (lastval before nextval): only the refused login of a closed database is a fault.
  if (code === '55000' && /is not currently accepting connections/.test(detail)) return { kind: 'closed', code, address: addressOf(e), detail }
  // A move's fence on a schema or on a tenant's rows of shared tables (moves/schema-fence.ts, moves/row-fence.ts): closed to this tenant, as a fenced database is.
  if (code === '55000' && /(?:^| - )this tenant is moving\b.*\bfenced$/.test(detail)) return { kind: 'closed', code, address: null, detail }
  for (const [pattern, messageKind, tag] of MESSAGES) {
    if (pattern.test(detail)) return { kind: messageKind, code: tag, address: null, detail }
  }
  return null
}

function addressOf (e: ErrorLike): string | null {
  if (typeof e.address === 'string') return typeof e.port === 'number' || typeof e.port === 'string' ? `${e.address}:${e.port}` : e.address
  if (typeof e.hostname === 'string') return e.hostname
  return null
}
