import type { MikroORM } from '@mikro-orm/core'

/** Runs one statement (with `?` parameters) where the caller decided: a transaction, or a connection. */
export type Run = (sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>

/**
 * The one executor for raw SQL on the central database: a statement with `?`
 * parameters run on the central ORM's connection (its pool, or the
 * transaction `em` was forked in), every row returned.
 */
export function centralSql (orm: Pick<MikroORM, 'em'>): Run {
  return async (sql, params = []) => await orm.em.getConnection().execute(sql, params as any[], 'all')
}
