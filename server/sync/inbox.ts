import type { CentralTables } from '../database/central-schema.js'
import type { Run } from './run.js'

// Every statement on the central inbox: the ids of tenant changes that reached the central database.

/** Records a tenant change's id in the running central transaction; false when it was applied before (forwarded twice). */
export async function receivedFirst (run: Run, t: CentralTables, changeId: string): Promise<boolean> {
  return (await run(`insert into ${t.fastify_tenancy_sync_inbox} (id) values (?) on conflict do nothing returning 1 as n`, [changeId])).length > 0
}

/** Forgets ids older than a week: a change is forwarded again only after a crash, long before that. */
export async function pruneInbox (run: Run, t: CentralTables): Promise<void> {
  await run(`delete from ${t.fastify_tenancy_sync_inbox} where received_at < now() - interval '7 days'`)
}
