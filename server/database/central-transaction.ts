import type { MikroORM } from '@mikro-orm/postgresql'
import { asClusterRuleError, RETRYABLE, type Run } from '../clusters/rules.js'

/**
 * Runs `fn` in one transaction on the central database, again on a deadlock
 * or a conflicting concurrent change (so `fn` must only write through `run`),
 * and turns the database's cluster-rule refusal into FST_TENANCY_CLUSTER_RULE.
 * Any other error rolls everything back and is thrown as it is.
 */
export async function centralTransaction<T> (orm: MikroORM, fn: (run: Run) => Promise<T>): Promise<T> {
  const conn = orm.em.getConnection()
  for (let attempt = 1; ; attempt++) {
    try {
      return await conn.transactional(async (trx) => await fn(async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)))
    } catch (error) {
      if (RETRYABLE.has((error as { code?: string }).code ?? '') && attempt < 8) {
        // A little random wait so that the two sides of a deadlock do not meet again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt))
        continue
      }
      throw asClusterRuleError(error)
    }
  }
}
