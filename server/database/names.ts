import { UnsafeDatabaseNameError } from '../errors.js'
import { UUID_PATTERN } from '../tenant.js'

const SAFE_NAME = /^[a-z0-9_]{1,63}$/

/** Throws unless `name` may be used as a database or schema name. */
export function assertSafeName (name: string): string {
  if (!SAFE_NAME.test(name)) throw new UnsafeDatabaseNameError(name.slice(0, 80))
  return name
}

/** Quotes a checked name as a SQL identifier. */
export function quoteIdent (name: string): string {
  return '"' + assertSafeName(name) + '"'
}

/**
 * A tenant's database (or schema) name: prefix + key without dashes + suffix.
 * Built from the immutable key, never from the identifier or a request value.
 */
export function tenantDatabaseName (key: string, prefix = 'tenant_', suffix = ''): string {
  if (!UUID_PATTERN.test(key)) throw new UnsafeDatabaseNameError(`${prefix}${String(key).slice(0, 40)}${suffix}`)
  return assertSafeName(prefix + key.replaceAll('-', '') + suffix)
}

/** The URL of database `dbName` on the server that `serverUrl` points at. */
export function databaseUrl (serverUrl: string, dbName: string): string {
  const url = new URL(serverUrl)
  url.pathname = '/' + assertSafeName(dbName)
  return url.toString()
}
