import { CommanderError } from 'commander'
import { databaseFault, type DatabaseFault } from '../database/database-faults.js'
import { PG } from '../database/pg-errors.js'
import { CENTRAL_TABLE_NAMES } from '../database/central-schema.js'

/** Exit codes of the command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3 } as const

// Mistakes in how the command was called or configured exit with 2; every other failure with 1.
const USAGE_CODES = new Set([
  'FST_TENANCY_CLI_USAGE', 'FST_TENANCY_CLI_CONFIG', 'FST_TENANCY_FILE_NOT_FOUND', 'FST_TENANCY_FILE_NOT_LOADABLE',
  // The plugin's options cannot do what was asked (no seeder, an unknown database host): configuration, like a usage mistake.
  'FST_TENANCY_INVALID_OPTION', 'FST_TENANCY_MISCONFIGURED', 'FST_TENANCY_INVALID_ROLLOUT'
])
// A database that cannot be reached or refuses the login exits with 3, whichever part of ours found it.
const UNAVAILABLE_CODES = new Set([
  'FST_TENANCY_DATABASE_UNAVAILABLE', 'FST_TENANCY_CENTRAL_UNREACHABLE', 'FST_TENANCY_CENTRAL_LOGIN_REFUSED', 'FST_TENANCY_CENTRAL_DATABASE_MISSING'
])

/** What the command reports for a failure: a stable code, one or two whole sentences, and its exit code. */
export interface CommandFailure {
  code: string
  message: string
  exitCode: number
}

interface ErrorLike {
  message?: unknown
  detail?: unknown
  code?: unknown
  severity?: unknown
  errors?: unknown[]
}

/** Capitalised, ending with a full stop: what the user reads. */
export function sentence (text: string): string {
  const t = text.trim().replace(/\s+/g, ' ')
  if (t.length === 0) return 'Something went wrong, without a message; run again with --verbose to see where.'
  // A command's name (tenants:rls) keeps its case: it is what the user types.
  const s = /^[a-z]+:[a-z-]+\b/.test(t) ? t : (t[0] as string).toUpperCase() + t.slice(1)
  return /[.!?]$/.test(s) ? s : `${s}.`
}

/** The line printed on stderr: the code, then the sentence. */
export function failureLine (failure: CommandFailure): string {
  return `${failure.code}: ${failure.message}`
}

/**
 * The code, sentence and exit code for any error: ours as they are; a
 * database that cannot be reached or refuses the login with what to check
 * (exit 3); the database's other errors without the SQL MikroORM puts in
 * front; anything else as FST_TENANCY_CLI_FAILED.
 */
export function describeError (error: unknown): CommandFailure {
  if (error instanceof CommanderError) {
    return { code: 'FST_TENANCY_CLI_USAGE', message: `${sentence(error.message.replace(/^error: /, ''))} Run fastify-tenancy --help for usage.`, exitCode: EXIT.usage }
  }
  const own = (error as ErrorLike | null)?.code
  const fault = typeof own === 'string' && own.startsWith('FST_TENANCY_') ? null : databaseFault(error)
  if (fault !== null) return { code: 'FST_TENANCY_DATABASE_UNAVAILABLE', message: faultSentence(fault), exitCode: EXIT.unavailable }
  let e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as ErrorLike
  // An AggregateError without a message of its own: its first error says what happened.
  if (String(e.message ?? '') === '' && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0] as ErrorLike
  const code = typeof e.code === 'string' ? e.code : ''
  const message = typeof e.message === 'string' ? e.message : ''
  if (code.startsWith('FST_TENANCY_')) return { code, message: sentence(message), exitCode: USAGE_CODES.has(code) ? EXIT.usage : UNAVAILABLE_CODES.has(code) ? EXIT.unavailable : EXIT.failed }
  const postgres = isPostgresError(e, code)
  let said = postgres ? postgresSaid(message) : message
  // PostgreSQL's detail says which row or value (a duplicated key): after the message, never instead of it.
  const detail = postgres && typeof e.detail === 'string' ? postgresSaid(e.detail) : ''
  if (detail !== '' && !said.includes(detail)) said = `${sentence(said)} ${detail}`
  // Only a central table missing says the central database is the wrong one (a tenant's table missing is the tenant's).
  if (code === PG.UNDEFINED_TABLE && CENTRAL_RELATION.test(message)) {
    return { code: 'FST_TENANCY_CLI_FAILED', message: `${sentence(said)} Is this the central database, and has it been migrated (fastify-tenancy central:migrate)?`, exitCode: EXIT.failed }
  }
  return { code: 'FST_TENANCY_CLI_FAILED', message: sentence(said), exitCode: EXIT.failed }
}

/** `relation "tenancy.tenants" does not exist`: one of our central tables, in whatever schema. */
const CENTRAL_RELATION = new RegExp(`relation "(?:[^".]+\\.)?(?:${CENTRAL_TABLE_NAMES.join('|')})" does not exist`)

/** What to tell someone whose database cannot be used, by kind; the address is theirs to see (it is their URL). */
function faultSentence (fault: DatabaseFault): string {
  const at = fault.address === null ? '' : ` at ${fault.address}`
  switch (fault.kind) {
    case 'unreachable':
      return `Cannot connect to PostgreSQL${at}: ${fault.code === 'ECONNREFUSED' ? 'the connection was refused' : 'it did not answer'} (${fault.code}). Is the server running, and are the host and port in the database URL right?`
    case 'unknown-host':
      return `Cannot connect to PostgreSQL: the host name${fault.address === null ? '' : ` "${fault.address}"`} is unknown (${fault.code}). Check the host in the database URL.`
    case 'login-refused':
      return `PostgreSQL refused the login: ${postgresSaid(fault.detail)} (${fault.code}). Check the user name and password in the database URL.`
    case 'database-missing':
      return `${sentence(postgresSaid(fault.detail))} Check the database name in the database URL, or create the database (${fault.code}).`
    case 'restarting':
      return `PostgreSQL is starting up, shutting down or restarting: ${postgresSaid(fault.detail)} (${fault.code}). Try again in a moment.`
    case 'too-many-connections':
      return `PostgreSQL has no connection slot free: ${postgresSaid(fault.detail)} (${fault.code}). Try again in a moment, or raise its max_connections.`
    case 'closed':
      return `${sentence(postgresSaid(fault.detail))} A move may be switching this tenant to another host; try again in a moment (${fault.code}).`
    default:
      return `The connection to PostgreSQL${at} was lost: ${postgresSaid(fault.detail)} (${fault.code}). Check that the server is running, then try again.`
  }
}

function isPostgresError (e: ErrorLike, code: string): boolean {
  return e.severity !== undefined || /^[0-9A-Z]{5}$/.test(code)
}

/** What PostgreSQL said, without the SQL that MikroORM and knex put in front (`<sql> - <message>`), trimmed of a final full stop. */
function postgresSaid (message: string): string {
  const cut = message.lastIndexOf(' - ')
  const said = (cut < 0 ? message : message.slice(cut + 3)).split('\n')[0] ?? ''
  return said.trim().replace(/\.$/, '')
}
