import { EntityManager, type ForkOptions, type PostgreSqlConnection } from '@mikro-orm/postgresql'
import { executePrefixed, settingsPrefix, type StatementSettings } from './statement-prefix.js'

type Execute = PostgreSqlConnection['execute']

/**
 * A view of a connection (shared by many tenants) whose `execute` runs each
 * statement with the tenant's settings in front; the rest is the connection's.
 */
function connectionWithPrefix (conn: PostgreSqlConnection, prefix: string): PostgreSqlConnection {
  const execute = (async (query: unknown, params?: unknown[], method?: 'all' | 'get' | 'run', ctx?: unknown, loggerContext?: Record<string, unknown>) =>
    await executePrefixed(conn, prefix, query, params, method, ctx, loggerContext)) as unknown as Execute
  return new Proxy(conn, {
    get (target, property) {
      if (property === 'execute') return execute
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/**
 * Makes a connection of one tenant's own (a short-lived migrator's) run every
 * statement with the settings, in place: MikroORM's migrator keeps the
 * connection object itself.
 */
export function applyStatementSettings (conn: PostgreSqlConnection, settings: StatementSettings): void {
  const prefix = settingsPrefix(settings)
  ;(conn as unknown as { execute: Execute }).execute = (async (query: unknown, params?: unknown[], method?: 'all' | 'get' | 'run', ctx?: unknown, loggerContext?: Record<string, unknown>) =>
    await executePrefixed(conn, prefix, query, params, method, ctx, loggerContext)) as unknown as Execute
}

/**
 * The EntityManager of tenant pools. It carries its tenant's key and, on a
 * pool shared by schema tenants, the statement settings that pick the
 * tenant's schema; every fork inherits them (`em.transactional()` works on a
 * fork). The ORM's own SQL names the schema (`em.fork({ schema })`); raw SQL
 * through `em.execute()` or `em.getConnection()` gets the settings in front
 * of each statement (statement-prefix.ts), so it stays correct behind a
 * transaction-mode pooler.
 */
export class TenantEntityManager extends EntityManager {
  /** The tenant this EntityManager was leased for, or null. */
  tenantKey: string | null = null
  private prefix: string | null = null
  private prefixed: { conn: PostgreSqlConnection, view: PostgreSqlConnection } | null = null

  /** Runs every raw statement of this EntityManager (and its forks) with `settings`. */
  useStatementSettings (settings: StatementSettings | null): void {
    this.prefix = settings === null ? null : settingsPrefix(settings)
    this.prefixed = null
  }

  override fork (options?: ForkOptions): this {
    const fork = super.fork(options)
    fork.tenantKey = this.tenantKey
    fork.prefix = this.prefix
    return fork
  }

  override getConnection (type?: 'read' | 'write'): PostgreSqlConnection {
    const conn = super.getConnection(type) as PostgreSqlConnection
    if (this.prefix === null) return conn
    if (this.prefixed?.conn !== conn) this.prefixed = { conn, view: connectionWithPrefix(conn, this.prefix) }
    return this.prefixed.view
  }

  override async execute<T extends Parameters<EntityManager['execute']>[2] = 'all'> (queryOrKnex: Parameters<EntityManager['execute']>[0], params: any[] = [], method: T = 'all' as T, loggerContext?: Parameters<EntityManager['execute']>[3]): Promise<any> {
    if (this.prefix === null) return await super.execute(queryOrKnex, params, method, loggerContext)
    const ctx = this.getContext(false).getTransactionContext()
    return await executePrefixed(super.getConnection('write') as PostgreSqlConnection, this.prefix, queryOrKnex, params, method as 'all', ctx, loggerContext as Record<string, unknown>)
  }
}
