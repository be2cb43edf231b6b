import { Utils } from '@mikro-orm/core'
import type { PostgreSqlConnection } from '@mikro-orm/postgresql'

/**
 * Settings a tenant's statements run with, as [name, value] pairs, each
 * applied with `set_config(name, value, true)`. Strategy `schema` sets
 * `search_path`; strategy `shared` sets the signed tenant key row-level
 * security reads.
 */
export type StatementSettings = ReadonlyArray<readonly [name: string, value: string]>

/** `select set_config('a', 'x', true), ...; `: the prefix that applies `settings` to the statement after it. */
export function settingsPrefix (settings: StatementSettings): string {
  const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`
  return 'select ' + settings.map(([name, value]) => `set_config(${literal(name)}, ${literal(value)}, true)`).join(', ') + '; '
}

type RawResult = Array<{ rows: unknown[], rowCount: number }> | { rows: unknown[], rowCount: number }

/** The parts of MikroORM's connection a prefixed statement goes through (protected in its types). */
interface ConnectionInternals {
  ensureConnection: () => Promise<void>
  config: { get: (key: 'onQuery') => (sql: string, params: unknown[]) => string }
  platform: { formatQuery: (sql: string, params: unknown[]) => string }
  getSql: (sql: string, formatted: string, loggerContext?: unknown) => string
  executeQuery: <T>(sql: string, run: () => Promise<T>, context?: unknown) => Promise<T>
  getKnex: () => { raw: (sql: string) => { transacting: (ctx: unknown) => void } & PromiseLike<RawResult> }
  transformRawResult: <T>(result: unknown, method: 'all' | 'get' | 'run') => T
}

/**
 * Runs one statement on `conn` with `prefix` in front of it, in the same
 * round trip. MikroORM 6 inlines parameters and sends each statement with the
 * simple query protocol, so `select set_config(..., true); <statement>` runs
 * as one implicit transaction (or inside the transaction MikroORM opened): the
 * settings never outlive the transaction, which keeps them correct behind
 * PgBouncer in transaction mode, at no extra BEGIN/COMMIT round trips.
 * Takes what `Connection.execute` takes: SQL with `?` parameters, or a knex
 * builder (one bound to a transaction with `.transacting()` stays in it).
 */
export async function executePrefixed<T = any> (conn: PostgreSqlConnection, prefix: string, queryOrKnex: unknown, params: unknown[] = [], method: 'all' | 'get' | 'run' = 'all', ctx?: unknown, loggerContext?: Record<string, unknown>): Promise<T> {
  const c = conn as unknown as ConnectionInternals
  await c.ensureConnection()
  if (Utils.isObject(queryOrKnex)) {
    const builder = queryOrKnex as { client: { transacting?: boolean }, toSQL: () => { sql: string, bindings?: unknown[] } }
    ctx ??= builder.client.transacting === true ? builder : null
    const q = builder.toSQL()
    queryOrKnex = q.sql
    params = q.bindings ?? []
  }
  const sql = c.config.get('onQuery')(queryOrKnex as string, params)
  const formatted = c.platform.formatQuery(sql, params)
  const logged = c.getSql(sql, formatted, loggerContext)
  return await c.executeQuery<T>(logged, async () => {
    const query = c.getKnex().raw(prefix + formatted)
    if (ctx !== null && ctx !== undefined) query.transacting(ctx)
    const res = await query
    // The first result is the set_config's; the statement's own result(s) follow.
    const own = Array.isArray(res) ? (res.length === 2 ? res[1] : res.slice(1)) : res
    return c.transformRawResult<T>(own, method)
  }, { query: sql, params, ...loggerContext })
}
