import type { Knex } from '@mikro-orm/postgresql'

/** The pg-boss queue that carries synced changes. */
export const SYNC_QUEUE = 'fastify-tenancy-sync'

/** Retries back off from 1 s; a change waits out a tenant database being down for a good while. */
export const SYNC_QUEUE_OPTIONS = { retryLimit: 30, retryDelay: 1, retryBackoff: true, expireInSeconds: 120 }

/**
 * pg-boss speaks `$1` placeholders through `executeSql`; this runs its SQL
 * in a knex transaction instead, so a job is inserted in the same
 * transaction as the change that caused it.
 */
export function inTransaction (trx: Knex.Transaction): { executeSql: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> } {
  return {
    executeSql: async (text, values = []) => {
      const bindings: unknown[] = []
      const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
        bindings.push(values[Number(n) - 1] ?? null)
        return '?'
      })
      const result = await trx.raw(sql, bindings as any[]) as { rows: any[] }
      return { rows: result.rows }
    }
  }
}
