import { createHash } from 'node:crypto'
import { PostgreSqlConnection, PostgreSqlDriver } from '@mikro-orm/postgresql'
import { Utils, type Configuration } from '@mikro-orm/core'
import { NoTenantContextError } from '../../errors.js'
import { UUID_PATTERN } from '../../tenant.js'
import { quoteIdent } from '../names.js'
import { TENANT_SETTING } from './rls-sql.js'

/** Signs a tenant key so the database believes it (see rls-sql.ts): `<key>.<sha256 hex>`. */
export function signedTenant (secret: string, key: string): string {
  return `${key}.${createHash('sha256').update(`${secret}:${key}`).digest('hex')}`
}

export interface TenantKeyDriverOptions {
  /** The key of the tenant whose statement runs now, or null outside any tenant context. */
  keyOf: () => string | null
  /** The secret of the shared database (see readSecret), read when the first statement runs. */
  secret: () => string
  /** The shared schema, put first on the search_path of every statement. */
  schema: string
}

type RawResult = Array<{ rows: unknown[], rowCount: number }> | { rows: unknown[], rowCount: number }

/**
 * A MikroORM PostgreSQL driver whose every statement names its tenant for
 * row-level security, in the same round trip. MikroORM 6 inlines parameters
 * and sends each statement with the simple query protocol, so
 * `select set_config(..., true); <statement>` runs as one implicit
 * transaction (or inside the transaction MikroORM opened): the setting never
 * outlives the transaction, which keeps it correct behind PgBouncer in
 * transaction mode, and costs no BEGIN/COMMIT round trips. A statement outside
 * a tenant context is refused before it is sent.
 */
export function tenantKeyDriver (options: TenantKeyDriverOptions): typeof PostgreSqlDriver {
  const searchPath = quoteIdent(options.schema).replaceAll("'", "''")
  const prefixes = new Map<string, string>()
  const prefixFor = (key: string): string => {
    let prefix = prefixes.get(key)
    if (prefix === undefined) {
      // The key is a checked UUID and the signature hex: nothing here needs quoting beyond the literal quotes.
      if (!UUID_PATTERN.test(key)) throw new NoTenantContextError(`A statement for tenant "${key.slice(0, 40)}"`)
      prefix = `select set_config('${TENANT_SETTING}', '${signedTenant(options.secret(), key)}', true), set_config('search_path', '${searchPath}', true); `
      if (prefixes.size >= 10_000) prefixes.clear()
      prefixes.set(key, prefix)
    }
    return prefix
  }

  class TenantKeyConnection extends PostgreSqlConnection {
    override async execute<T = any> (queryOrKnex: any, params: any[] = [], method: 'all' | 'get' | 'run' = 'all', ctx?: any, loggerContext?: any): Promise<T> {
      const key = options.keyOf()
      if (key === null) throw new NoTenantContextError('A query on a shared tenant table')
      await this.ensureConnection()
      if (Utils.isObject(queryOrKnex)) {
        ctx ??= ((queryOrKnex as any).client.transacting === true ? queryOrKnex : null)
        const q = (queryOrKnex as any).toSQL()
        queryOrKnex = q.sql
        params = q.bindings ?? []
      }
      const sql: string = this.config.get('onQuery')(queryOrKnex as string, params)
      const formatted = this.platform.formatQuery(sql, params)
      const logged = (this as any).getSql(sql, formatted, loggerContext) as string
      return await this.executeQuery<T>(logged, async () => {
        const query = this.getKnex().raw(prefixFor(key) + formatted)
        if (ctx !== null && ctx !== undefined) query.transacting(ctx)
        const res = await query as unknown as RawResult
        // The first result is the set_config's; the statement's own result(s) follow.
        const own = Array.isArray(res) ? (res.length === 2 ? res[1] : res.slice(1)) : res
        return this.transformRawResult<T>(own, method)
      }, { query: sql, params, ...loggerContext })
    }
  }

  return class TenantKeyDriver extends PostgreSqlDriver {
    constructor (config: Configuration) {
      super(config)
      const self = this as unknown as { connection: PostgreSqlConnection, replicas: PostgreSqlConnection[], config: Configuration }
      self.connection = new TenantKeyConnection(self.config)
      self.replicas = []
    }
  }
}
