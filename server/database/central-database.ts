import pg from 'pg'
import { CentralDatabaseMissingError, CentralLoginRefusedError, CentralSchemaError, CentralUnreachableError } from '../errors.js'
import { quoteIdent } from './names.js'
import { PG } from './pg-errors.js'

interface DriverError { code?: string, message?: string, errors?: unknown[], hostname?: string }

/** Where `url` points, without its password: `host:port`. */
function place (url: URL): string {
  return `${url.hostname}:${url.port === '' ? '5432' : url.port}`
}

function roleOf (url: URL): string {
  return decodeURIComponent(url.username) === '' ? 'the default role' : decodeURIComponent(url.username)
}

/** Node reports a refused connection to every address of a name (localhost) as one AggregateError without a code. */
function rootCause (error: unknown): DriverError {
  let e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as DriverError
  if (e.code === undefined && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0] as DriverError
  return e
}

/**
 * The FST_TENANCY_* error for a failed connection to the central database,
 * with a sentence that says what to check; null when `error` is not a
 * connection failure (a statement's own error). Never the password.
 */
export function centralConnectionError (error: unknown, url: string): Error | null {
  const u = new URL(url)
  const e = rootCause(error)
  switch (e.code) {
    case 'ECONNREFUSED':
      return new CentralUnreachableError(`the server at ${place(u)} refused the connection (start PostgreSQL there, or fix the port)`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new CentralUnreachableError(`the host name "${u.hostname}" does not resolve; check the host in database.url`)
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new CentralUnreachableError(`the server at ${place(u)} does not answer (${e.code ?? 'timeout'}): check the host, the port and the network`)
    case 'ECONNRESET':
      return new CentralUnreachableError(`the server at ${place(u)} closed the connection at once (is it a PostgreSQL server, and does its pg_hba.conf accept this client)`)
    case PG.INVALID_PASSWORD:
      return new CentralLoginRefusedError(roleOf(u), 'wrong password')
    case PG.INVALID_AUTHORIZATION:
      return new CentralLoginRefusedError(roleOf(u), (e.message ?? 'not allowed').replace(/\.$/, ''))
    default:
      return null
  }
}

async function connect (url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'fastify-tenancy:setup' })
  // A server going away must reject the statement, not become an uncaught 'error'.
  client.on('error', () => {})
  await client.connect()
  return client
}

/** The server's maintenance database URL (postgres, else template1) for CREATE DATABASE. */
function maintenanceUrls (url: string): string[] {
  return ['postgres', 'template1'].map((name) => {
    const u = new URL(url)
    u.pathname = '/' + name
    return u.toString()
  })
}

/**
 * Makes sure the central database of `url` exists and can be logged into:
 * creates it when it is missing and the role may create databases (as
 * MikroORM's ensureDatabase does). Every failure is an FST_TENANCY_* error
 * naming database.url: a refused connection, an unknown host, a refused
 * login, a missing database the role may not create. Several instances
 * starting at once: the one that loses the race finds it made.
 */
export async function ensureCentralDatabase (url: string): Promise<void> {
  const u = new URL(url)
  const name = decodeURIComponent(u.pathname.slice(1))
  try {
    const client = await connect(url)
    await client.end()
    return
  } catch (error) {
    const e = rootCause(error)
    if (e.code !== PG.INVALID_CATALOG_NAME) throw centralConnectionError(error, url) ?? error
  }
  let lastError: unknown = null
  for (const maintenance of maintenanceUrls(url)) {
    let client: pg.Client
    try {
      client = await connect(maintenance)
    } catch (error) {
      lastError = error
      if (rootCause(error).code === PG.INVALID_CATALOG_NAME) continue
      throw centralConnectionError(error, url) ?? error
    }
    try {
      await client.query(`create database ${quoteIdent(name)}`)
      return
    } catch (error) {
      const code = rootCause(error).code
      if (code === PG.DUPLICATE_DATABASE) return
      if (code === PG.INSUFFICIENT_PRIVILEGE) throw new CentralDatabaseMissingError(name, roleOf(u), name)
      throw error
    } finally {
      await client.end()
    }
  }
  // Neither maintenance database is there to connect to: nothing can create it.
  if (lastError !== null) throw new CentralDatabaseMissingError(name, roleOf(u), name)
}

/**
 * Makes the central schema when it is missing; a role that may not create
 * schemas gets FST_TENANCY_CENTRAL_SCHEMA (the schema made by an operator for
 * the role is enough).
 */
export async function ensureCentralSchema (client: Pick<pg.ClientBase, 'query'>, url: string, schema: string): Promise<void> {
  const exists = await client.query('select 1 from pg_namespace where nspname = $1', [schema])
  if (exists.rowCount === 1) return
  try {
    await client.query(`create schema if not exists ${quoteIdent(schema)}`)
  } catch (error) {
    if (rootCause(error).code !== PG.INSUFFICIENT_PRIVILEGE) throw error
    const u = new URL(url)
    throw new CentralSchemaError(schema, roleOf(u), decodeURIComponent(u.pathname.slice(1)))
  }
}
