import type { MikroORM } from '@mikro-orm/postgresql'
import type { Connection, Transaction } from '@mikro-orm/core'
import { ClusterRuleError, ConcurrentChangeError } from '../errors.js'
import { centralTables, type CentralTables } from './central-schema.js'
import { PG, isDeadlockOrSerialization } from './pg-errors.js'

/** Runs one statement in the caller's transaction; `tables` names the central tables in SQL. */
export type Run = ((sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>) & { readonly tables: CentralTables }

/** Transient conflicts between concurrent transactions (deadlock, serialization, a tenant moved meanwhile): safe to run again. */
export const RETRYABLE = new Set<string>([PG.DEADLOCK_DETECTED, PG.SERIALIZATION_FAILURE, 'FST_TENANCY_CONCURRENT_CHANGE'])

/**
 * Turns the central schema's own refusal (the deferred cluster-rule trigger of
 * its migrations) into the same clear error, and a conflict that retrying did
 * not get past into a registered one.
 */
export function asClusterRuleError (error: unknown): unknown {
  const e = error as { code?: string, message?: string }
  if (isDeadlockOrSerialization(e)) return new ConcurrentChangeError('the same tenants or clusters')
  if (e.code === PG.CHECK_VIOLATION && String(e.message).includes('fastify_tenancy_cluster_rule')) {
    return new ClusterRuleError('Another change to this cluster happened at the same time and this one would break its rule (a cluster with tenants needs a Parent Tenant from among them). Reload and try again.')
  }
  return error
}

/** A `Run` of statements on the central connection `conn` (inside `trx` when given), naming the central tables through `tables`. */
export function centralRun (conn: Pick<Connection, 'execute'>, tables: CentralTables, trx?: Transaction): Run {
  return Object.assign(async (sql: string, params: unknown[] = []) => await conn.execute(sql, params as any[], 'all', trx), { tables })
}

/** PostgreSQL rolled the work back for a deadlock or a conflicting concurrent change. */
export function isConflict (error: unknown): boolean {
  return RETRYABLE.has((error as { code?: string }).code ?? '')
}

/**
 * Runs `attempt` again (up to 8 times) when PostgreSQL rolled it back for a
 * deadlock or a conflicting concurrent change; `attempt` must be one
 * transaction (or one statement), so a rolled-back try left nothing behind.
 */
export async function retryingConflicts<T> (attempt: () => Promise<T>, retryable: (error: unknown) => boolean = isConflict): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (error) {
      if (!retryable(error) || n >= 8) throw error
      // A little random wait so that the two sides of a deadlock do not meet again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * n))
    }
  }
}

/** The SQL that tells the central database's triggers the plugin's clock for the rest of the transaction (former names expire by it). */
export const SET_CLOCK = 'select set_config(\'fastify_tenancy.now\', ?, true)'

/**
 * Runs `fn` in one transaction on the central database, again on a deadlock
 * or a conflicting concurrent change (so `fn` must only write through `run`),
 * and turns the database's cluster-rule refusal into FST_TENANCY_CLUSTER_RULE.
 * Any other error rolls everything back and is thrown as it is. With `now`
 * (the plugin's clock), the triggers judge time by it (see SET_CLOCK).
 */
export async function centralTransaction<T> (orm: MikroORM, fn: (run: Run) => Promise<T>, now?: () => number): Promise<T> {
  const conn = orm.em.getConnection()
  try {
    const tables = centralTables(orm)
    return await retryingConflicts(async () => await conn.transactional(async (trx) => {
      const run = centralRun(conn, tables, trx)
      if (now !== undefined) await run(SET_CLOCK, [new Date(now()).toISOString()])
      return await fn(run)
    }))
  } catch (error) {
    throw asClusterRuleError(error)
  }
}
