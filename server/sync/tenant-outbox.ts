import type { Connection } from '@mikro-orm/core'
import type { SyncChange } from './change.js'
import type { Run } from './run.js'

// Every statement on a tenant's outbox: the changes made in that tenant, kept
// in its own database until they are forwarded to the central database.
const OUTBOX = 'fastify_tenancy_sync_outbox'

/** How many changes one read takes. */
export const OUTBOX_BATCH = 50

/** Writes a change in the running tenant transaction (the change's own). */
export async function appendToOutbox (run: Run, change: SyncChange): Promise<void> {
  await run(`insert into ${OUTBOX} (change) values (?::jsonb)`, [JSON.stringify(change)])
}

/** The oldest changes waiting, in the order they were made. */
export async function readOutbox (conn: Connection): Promise<Array<{ id: unknown, change: SyncChange }>> {
  const rows: Array<Record<string, unknown>> = await conn.execute(`select id, change from ${OUTBOX} order by id limit ${OUTBOX_BATCH}`, [], 'all')
  return rows.map((row) => ({ id: row.id, change: (typeof row.change === 'string' ? JSON.parse(row.change) : row.change) as SyncChange }))
}

/** Removes forwarded changes, in one statement. */
export async function dropFromOutbox (conn: Connection, ids: unknown[]): Promise<void> {
  await conn.execute(`delete from ${OUTBOX} where id in (${ids.map(() => '?').join(', ')})`, ids, 'run')
}

/** Whether the tenant deleted its copy in a change still waiting here (its mapping row is still there centrally until it is forwarded). */
export async function deleteWaiting (run: Run, resource: string, globalId: string): Promise<boolean> {
  return (await run(`select 1 from ${OUTBOX} where change->>'op' = 'delete' and change->>'resource' = ? and change->>'globalId' = ? limit 1`, [resource, globalId])).length > 0
}
