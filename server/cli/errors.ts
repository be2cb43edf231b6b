/** Exit codes of the command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

// Mistakes in how the command was called or configured exit with 2; every other failure with 1.
const USAGE_CODES = new Set([
  'FST_TENANCY_CLI_USAGE', 'FST_TENANCY_CLI_CONFIG', 'FST_TENANCY_FILE_NOT_FOUND', 'FST_TENANCY_FILE_NOT_LOADABLE',
  // The plugin's options cannot do what was asked (no seeder, an unknown database host): configuration, like a usage mistake.
  'FST_TENANCY_INVALID_OPTION', 'FST_TENANCY_MISCONFIGURED'
])

interface ErrorLike {
  message?: string
  code?: string
  address?: string
  port?: number
  severity?: string
  errors?: unknown[]
}

/** Capitalised, ending with a full stop: what the user reads. */
export function sentence (text: string): string {
  const t = text.trim().replace(/\s+/g, ' ')
  if (t.length === 0) return 'Something went wrong, without a message; run again with --verbose to see where.'
  const s = t[0]?.toUpperCase() + t.slice(1)
  return /[.!?:]$/.test(s) ? s : `${s}.`
}

/**
 * The sentence and exit code for any error: ours as they are, the database's
 * without the SQL MikroORM puts in front, a refused connection with what to check.
 */
export function describeError (error: unknown): { message: string, exitCode: number } {
  let e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as ErrorLike
  // Node reports a refused connection to every address of a name (localhost) as one AggregateError without a message.
  if ((e.message ?? '') === '' && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0] as ErrorLike
  const code = e.code ?? ''
  const message = e.message ?? ''
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET'].includes(code)) {
    const where = e.address !== undefined ? `${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : 'the database server'
    return { message: `Cannot connect to PostgreSQL at ${where} (${code}): is it running, and is the database URL right?`, exitCode: EXIT.failed }
  }
  // A PostgreSQL error, through knex and MikroORM: "<sql> - <what PostgreSQL said>".
  const pgMessage = e.severity !== undefined || /^[0-9A-Z]{5}$/.test(code) ? message.slice(message.lastIndexOf(' - ') + (message.includes(' - ') ? 3 : 0)) : message
  if (code === '42P01') {
    return { message: `${sentence(pgMessage)} Is this the central database, and has it been migrated (fastify-tenancy central:migrate)?`, exitCode: EXIT.failed }
  }
  if (code === '3D000' || code === '28P01' || code === '28000') return { message: `${sentence(pgMessage)} Check the database URL.`, exitCode: EXIT.failed }
  if (USAGE_CODES.has(code)) return { message: sentence(message), exitCode: EXIT.usage }
  return { message: sentence(pgMessage), exitCode: EXIT.failed }
}
