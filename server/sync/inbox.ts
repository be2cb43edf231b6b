import type { Run } from './run.js'

// Every statement on the central inbox: the ids of tenant changes that reached the central database.
const INBOX = 'fastify_tenancy_sync_inbox'

/** Records a tenant change's id in the running central transaction; false when it was applied before (forwarded twice). */
export async function receivedFirst (run: Run, changeId: string): Promise<boolean> {
  return (await run(`insert into ${INBOX} (id) values (?) on conflict do nothing returning 1 as n`, [changeId])).length > 0
}

/** Forgets ids older than a week: a change is forwarded again only after a crash, long before that. */
export async function pruneInbox (run: Run): Promise<void> {
  await run(`delete from ${INBOX} where received_at < now() - interval '7 days'`)
}
