import { EntityManager, type ForkOptions, type PostgreSqlConnection } from '@mikro-orm/postgresql'
import type { Knex } from '@mikro-orm/knex'
import { MisconfigurationError } from '../errors.js'

/**
 * Settings a tenant's transactions start with, as [name, value] pairs, each
 * applied with `set_config(name, value, true)`: local to the transaction, so
 * they hold on whichever server connection a transaction-mode pooler (PgBouncer)
 * hands out, and are gone when it ends. Strategy `schema` sets `search_path`;
 * strategy `shared` sets the tenant key row-level security reads.
 */
export type TransactionSettings = ReadonlyArray<readonly [name: string, value: string]>

type Conn = PostgreSqlConnection
type Trx = Knex.Transaction
interface BeginOptions { ctx?: Trx, eventBroadcaster?: unknown, loggerContext?: unknown, isolationLevel?: unknown, readOnly?: boolean }

/** One statement, one round trip, on the transaction's own connection. */
async function applySettings (conn: Conn, trx: Trx, settings: TransactionSettings): Promise<void> {
  if (settings.length === 0) return
  const sql = 'select ' + settings.map(() => 'set_config(?, ?, true)').join(', ')
  await conn.execute(sql, settings.flatMap(([name, value]) => [name, value]), 'run', trx)
}

interface SettingsMethods {
  begin: (options?: BeginOptions) => Promise<Trx>
  transactional: <T>(cb: (trx: Trx) => Promise<T>, options?: BeginOptions) => Promise<T>
  execute: (query: unknown, params?: unknown[], method?: 'all' | 'get' | 'run', ctx?: Trx, loggerContext?: unknown) => Promise<any>
}

/**
 * `begin`, `transactional` and `execute` of `conn`, made to apply `settings`:
 * a top-level transaction runs them right after BEGIN (a savepoint inherits
 * them), and a SQL string run outside any transaction gets one of its own.
 * `original` holds the unpatched methods (they differ from `conn`'s own when
 * `conn` is patched in place).
 */
function settingsMethods (conn: Conn, settings: TransactionSettings, original: Pick<Conn, 'begin' | 'execute'>): SettingsMethods {
  const begin = async (options: BeginOptions = {}): Promise<Trx> => {
    const trx = await original.begin.call(conn, options as any)
    if (options.ctx !== undefined) return trx
    try {
      await applySettings(conn, trx, settings)
    } catch (error) {
      await conn.rollback(trx).catch(() => {})
      throw error
    }
    return trx
  }
  const transactional = async <T>(cb: (trx: Trx) => Promise<T>, options: BeginOptions = {}): Promise<T> => {
    const trx = await begin(options)
    try {
      const result = await cb(trx)
      await conn.commit(trx, options.eventBroadcaster as any, options.loggerContext as any)
      return result
    } catch (error) {
      await conn.rollback(trx, options.eventBroadcaster as any, options.loggerContext as any)
      throw error
    }
  }
  const execute = async (query: unknown, params?: unknown[], method?: 'all' | 'get' | 'run', ctx?: Trx, loggerContext?: unknown): Promise<any> => {
    // A knex builder may be bound to a transaction already (`.transacting()`, as MikroORM's migrator does), and names its schema itself.
    if (ctx != null || typeof query !== 'string') return await original.execute.call(conn, query as any, params, method, ctx, loggerContext as any)
    return await transactional(async (trx) => await original.execute.call(conn, query as any, params, method, trx, loggerContext as any))
  }
  return { begin, transactional, execute }
}

/**
 * A view of a connection shared by many tenants (one pool per host) that
 * applies one tenant's settings; everything else goes to the connection.
 */
export function connectionWithSettings (conn: Conn, settings: TransactionSettings): Conn {
  const methods = settingsMethods(conn, settings, { begin: conn.begin, execute: conn.execute })
  return new Proxy(conn, {
    get (target, property) {
      if (property === 'begin' || property === 'transactional' || property === 'execute') return methods[property]
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/**
 * Makes a connection of one tenant's own (a short-lived migrator's) apply
 * the settings to everything it runs, in place: MikroORM's migrator keeps
 * the connection object itself.
 */
export function applyTransactionSettings (conn: Conn, settings: TransactionSettings): void {
  const methods = settingsMethods(conn, settings, { begin: conn.begin, execute: conn.execute })
  const patched = conn as unknown as SettingsMethods
  patched.begin = methods.begin
  // The connection's own transactional() calls this.begin(), the patched one.
  patched.execute = methods.execute
}

/**
 * The EntityManager of tenant pools. It carries the tenant's transaction
 * settings (and key), and every fork inherits them (`em.transactional()`
 * works on a fork). With settings, `getConnection()` and `execute()` apply
 * them: every transaction it opens (flush, transactional, begin) starts with
 * one `select set_config(...)`, and raw SQL outside a transaction is wrapped
 * in one. ORM reads outside a transaction (`find`, `count`) run as they are:
 * strategy `schema` makes those safe with schema-qualified SQL.
 */
export class TenantEntityManager extends EntityManager {
  /** Settings every transaction of this EntityManager starts with, or null for none. */
  transactionSettings: TransactionSettings | null = null
  /** The tenant this EntityManager belongs to, or null when not leased for one. */
  tenantKey: string | null = null
  private settingsConnection: { settings: TransactionSettings, conn: Conn } | null = null

  override fork (options?: ForkOptions): this {
    const fork = super.fork(options)
    fork.transactionSettings = this.transactionSettings
    fork.tenantKey = this.tenantKey
    return fork
  }

  override getConnection (type?: 'read' | 'write'): Conn {
    const conn = super.getConnection(type) as Conn
    const settings = this.transactionSettings
    if (settings === null) return conn
    if (this.settingsConnection?.settings !== settings) this.settingsConnection = { settings, conn: connectionWithSettings(conn, settings) }
    return this.settingsConnection.conn
  }

  override async execute<T extends Parameters<EntityManager['execute']>[2] = 'all'> (queryOrKnex: Parameters<EntityManager['execute']>[0], params: any[] = [], method: T = 'all' as T, loggerContext?: Parameters<EntityManager['execute']>[3]): Promise<any> {
    if (this.transactionSettings === null || this.getContext(false).getTransactionContext() !== undefined) {
      return await super.execute(queryOrKnex, params, method, loggerContext)
    }
    return await this.getConnection('write').execute(queryOrKnex as any, params, method as any, undefined, loggerContext as any)
  }
}

/** Gives `em` (a tenant pool's EntityManager) and every fork of it the settings. */
export function useTransactionSettings (em: EntityManager, settings: TransactionSettings | null): void {
  if (!(em instanceof TenantEntityManager)) throw new MisconfigurationError('Transaction settings need an EntityManager of a tenant pool (TenantEntityManager).')
  em.transactionSettings = settings
}
