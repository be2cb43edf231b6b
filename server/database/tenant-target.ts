/**
 * Where one tenant's tables live: a database of its own (strategy `database`)
 * or a schema of its own inside a shared database (strategy `schema`).
 */
export interface TenantTarget {
  /** Unique per target; the connection manager keys pools by it. */
  readonly id: string
  /** Connection URL of the database holding the tables. */
  readonly url: string
  /** The tenant's schema (strategy `schema`), or null for a database of its own. */
  readonly schema: string | null
  /** The database (or schema) name made from the tenant's key. */
  readonly name: string
  /** URL of the server's maintenance database (for CREATE/DROP DATABASE). */
  readonly server: string
  /** Name of the database host (from `database.hosts`). */
  readonly host: string
  /** The tenant's key. */
  readonly key: string
}

/** MikroORM options that point an instance at a target: the schema, and a search_path for raw SQL and migrations. */
export function targetOrmOptions (target: TenantTarget): { clientUrl: string, schema?: string, driverOptions?: Record<string, unknown> } {
  if (target.schema === null) return { clientUrl: target.url }
  return {
    clientUrl: target.url,
    schema: target.schema,
    driverOptions: { connection: { options: `-c search_path="${target.schema}"` } }
  }
}
