/**
 * The PostgreSQL error codes (SQLSTATEs, https://www.postgresql.org/docs/current/errcodes-appendix.html)
 * the plugin reacts to, named once. node-postgres puts the code on the
 * error as `code`; MikroORM's and knex's wrappers keep it there.
 */
export const PG = {
  UNIQUE_VIOLATION: '23505',
  FOREIGN_KEY_VIOLATION: '23503',
  CHECK_VIOLATION: '23514',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  INSUFFICIENT_PRIVILEGE: '42501',
  UNDEFINED_TABLE: '42P01',
  DUPLICATE_DATABASE: '42P04',
  DUPLICATE_OBJECT: '42710',
  INVALID_CATALOG_NAME: '3D000',
  INVALID_SCHEMA_NAME: '3F000',
  OBJECT_IN_USE: '55006',
  INVALID_PASSWORD: '28P01',
  INVALID_AUTHORIZATION: '28000',
  ADMIN_SHUTDOWN: '57P01',
  CRASH_SHUTDOWN: '57P02',
  CANNOT_CONNECT_NOW: '57P03',
  TOO_MANY_CONNECTIONS: '53300',
  OUT_OF_MEMORY: '53400',
  INTERNAL_ERROR: 'XX000'
} as const

export type PgErrorCode = typeof PG[keyof typeof PG]

/** The SQLSTATE (or Node's error code) of an error, '' when it has none. */
export function pgCode (error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : ''
}

/** A unique constraint refused the row (another writer got there first); with `on`, only the constraint or column of that name. */
export function isUniqueViolation (error: unknown, on?: string): boolean {
  if (pgCode(error) !== PG.UNIQUE_VIOLATION) return false
  const e = error as { constraint?: string, detail?: string }
  return on === undefined || (String(e.constraint ?? '') + String(e.detail ?? '')).includes(on)
}

/** A foreign key refused the row (what it points to is gone). */
export const isForeignKeyViolation = (error: unknown): boolean => pgCode(error) === PG.FOREIGN_KEY_VIOLATION

/** PostgreSQL rolled the transaction back for a deadlock or a serialization failure: trying it again may work. */
export const isDeadlockOrSerialization = (error: unknown): boolean => pgCode(error) === PG.DEADLOCK_DETECTED || pgCode(error) === PG.SERIALIZATION_FAILURE

/** The database named does not exist. */
export const isUndefinedDatabase = (error: unknown): boolean => pgCode(error) === PG.INVALID_CATALOG_NAME

/** The role lacks a privilege (also what our own tenant-proof checks raise). */
export const isInsufficientPrivilege = (error: unknown): boolean => pgCode(error) === PG.INSUFFICIENT_PRIVILEGE
