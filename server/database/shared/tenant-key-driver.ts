import { createHash } from 'node:crypto'
import { PostgreSqlConnection, PostgreSqlDriver } from '@mikro-orm/postgresql'
import type { Configuration } from '@mikro-orm/core'
import { NoTenantContextError } from '../../errors.js'
import { UUID_PATTERN } from '../../tenant.js'
import { quoteIdent } from '../names.js'
import { TENANT_SETTING } from './rls-sql.js'
import { executePrefixed, settingsPrefix } from '../statement-prefix.js'

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

/**
 * A MikroORM PostgreSQL driver whose every statement names its tenant for
 * row-level security, in the same round trip (statement-prefix.ts, which the
 * schema strategy uses for its search_path too). MikroORM 6 inlines parameters
 * and sends each statement with the simple query protocol, so
 * `select set_config(..., true); <statement>` runs as one implicit
 * transaction (or inside the transaction MikroORM opened): the setting never
 * outlives the transaction, which keeps it correct behind PgBouncer in
 * transaction mode, and costs no BEGIN/COMMIT round trips. A statement outside
 * a tenant context is refused before it is sent.
 */
export function tenantKeyDriver (options: TenantKeyDriverOptions): typeof PostgreSqlDriver {
  const searchPath = quoteIdent(options.schema)
  const prefixes = new Map<string, string>()
  const prefixFor = (key: string): string => {
    let prefix = prefixes.get(key)
    if (prefix === undefined) {
      // The key is a checked UUID and the signature hex; settingsPrefix quotes the literals anyway.
      if (!UUID_PATTERN.test(key)) throw new NoTenantContextError(`A statement for tenant "${key.slice(0, 40)}"`)
      prefix = settingsPrefix([[TENANT_SETTING, signedTenant(options.secret(), key)], ['search_path', searchPath]])
      if (prefixes.size >= 10_000) prefixes.clear()
      prefixes.set(key, prefix)
    }
    return prefix
  }

  class TenantKeyConnection extends PostgreSqlConnection {
    override async execute<T = any> (queryOrKnex: any, params: any[] = [], method: 'all' | 'get' | 'run' = 'all', ctx?: any, loggerContext?: any): Promise<T> {
      const key = options.keyOf()
      if (key === null) throw new NoTenantContextError('A query on a shared tenant table')
      return await executePrefixed<T>(this, prefixFor(key), queryOrKnex, params, method, ctx, loggerContext)
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
