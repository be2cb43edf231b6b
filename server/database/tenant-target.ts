import { quoteIdent } from './names.js'
import type { StatementSetup } from './statement-client.js'
import type { TenantIsolation } from '../tenant.js'

/**
 * Where one tenant's tables live: a database of its own (strategy `database`)
 * or a schema of its own inside a shared database (strategy `schema`).
 */
export interface TenantTarget {
  /** Unique per target. */
  readonly id: string
  /**
   * Set when many targets share one pool (strategy `schema`: the host's URL):
   * the tenant's schema is then chosen per lease. Otherwise the pool is `id`'s.
   */
  readonly pool?: string
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
  /**
   * Strategy `shared`: a URL that reaches the tables as their owner (for
   * migrations, moves and bundles); `url` is the app role's. Absent in the
   * other strategies, whose `url` is the owner's already.
   */
  readonly ownerUrl?: string
  /** `'database'`: a shared-strategy tenant isolated into a database of its own (same tables, same row-level security). */
  readonly isolation?: TenantIsolation | null
}

/** The URL that reaches a target's tables as their owner. */
export function ownerUrlOf (target: Pick<TenantTarget, 'url' | 'ownerUrl'>): string {
  return target.ownerUrl ?? target.url
}

/**
 * MikroORM options that point an instance at a target. A schema is named for
 * the ORM's own SQL (schema-qualified); raw SQL gets the schema through
 * `schemaSetup()` in each statement's transaction, never per session (a
 * session setting would leak to other tenants behind a transaction-mode
 * pooler).
 */
export function targetOrmOptions (target: Pick<TenantTarget, 'url' | 'schema'>): { clientUrl: string, schema?: string } {
  if (target.schema === null) return { clientUrl: target.url }
  return { clientUrl: target.url, schema: target.schema }
}

const SEARCH_PATH_SQL = "select pg_catalog.set_config('search_path', $1, true)"
const setups = new Map<string, StatementSetup>()

/**
 * The setup of a schema tenant's statements: its schema on the search_path,
 * local to the statement's transaction, with pg_temp explicitly last (so no
 * temporary table shadows one of the tenant's).
 */
export function schemaSetup (schema: string): StatementSetup {
  let setup = setups.get(schema)
  if (setup === undefined) {
    setup = { owner: schema, text: SEARCH_PATH_SQL, values: [`${quoteIdent(schema)}, pg_temp`] }
    if (setups.size >= 10_000) setups.clear()
    setups.set(schema, setup)
  }
  return setup
}
