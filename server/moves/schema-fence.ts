import pg from 'pg'
import { quoteIdent } from '../database/names.js'
import { withServer } from '../database/tenant-database.js'
import { MoveStalledError } from '../errors.js'
import { quoteAny, tenantTables } from './replication.js'
import type { Fence } from './source-fence.js'
import { waitUntil } from './wait-until.js'

/** The function the fence's triggers call; it lives in the tenant's schema, so dropping the schema drops the fence too. */
const REFUSE = 'fastify_tenancy_moved'
const TRIGGER = 'fastify_tenancy_moved'
const POLL_MS = 2

/**
 * The fence around a schema tenant's source schema at the switch. Other
 * tenants share the schema's database (and its pools), so the database
 * cannot be closed as for strategy database: instead every table of the
 * schema gets a trigger that refuses any write (insert, update, delete,
 * truncate). Creating the triggers waits for the transactions writing those
 * tables to end (a lock they hold), so a write either committed before the
 * fence (and is replicated) or fails; none is lost. Reads still work.
 */
export async function prepareSchemaFence (databaseUrl: string, schema: string): Promise<Fence> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'fastify-tenancy:move' })
  client.on('error', () => {})
  await client.connect()
  const raise = async (drainMs: number): Promise<void> => {
    const tables = await tenantTables(client, schema)
    const oids = tables.map((t) => t.quoted)
    // In-flight transactions of the tenant end on their own; after drainMs those still holding its tables are ended.
    // pg_locks lists every database's locks, and relation oids repeat across databases (a database copied from a template keeps them).
    const holders = async (): Promise<number[]> => (await client.query<{ pid: number }>(`
      select distinct l.pid from pg_locks l where l.pid <> pg_backend_pid() and l.locktype = 'relation'
         and l.database = (select oid from pg_database where datname = current_database())
         and l.relation = any(select to_regclass(t)::oid from unnest($1::text[]) t)`, [oids])).rows.map((r) => r.pid)
    const drained = await waitUntil(async () => (await holders()).length === 0 ? true : undefined, { timeoutMs: drainMs, everyMs: POLL_MS, onTimeout: () => new MoveStalledError('drain') }).catch(() => false)
    if (!drained) await client.query('select pg_terminate_backend(pid) from unnest($1::int[]) pid', [await holders()])
    await client.query('begin')
    try {
      await client.query('set local lock_timeout = 10000')
      await client.query(`create or replace function ${quoteIdent(schema)}.${REFUSE}() returns trigger language plpgsql as $$
        begin raise exception 'this tenant is moving to another host; its source is fenced' using errcode = '55000'; end $$`)
      for (const t of tables) {
        await client.query(`drop trigger if exists ${TRIGGER} on ${t.quoted}`)
        await client.query(`create trigger ${TRIGGER} before insert or update or delete or truncate on ${t.quoted} for each statement execute function ${quoteIdent(schema)}.${REFUSE}()`)
      }
      await client.query('commit')
    } catch (error) {
      await client.query('rollback').catch(() => {})
      throw error
    }
  }
  try {
    // A fence left up by a crash stays up (the triggers are there); raising it again changes nothing.
    const up = (await client.query('select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1 and p.proname = $2', [schema, REFUSE])).rowCount === 1
    if (up) await raise(0)
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
  return { client, raise, close: async () => { await client.end().catch(() => {}) } }
}

/** Takes a schema's fence down: its tables take writes again (a move undone). */
export async function lowerSchemaFence (databaseUrl: string, schema: string): Promise<void> {
  await withServer(databaseUrl, async (c) => {
    // The triggers depend on the function, so they go with it.
    await c.query(`drop function if exists ${quoteAny(schema)}.${REFUSE}() cascade`)
  })
}
