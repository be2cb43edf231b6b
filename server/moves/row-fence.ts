import pg from 'pg'
import { withServer } from '../database/tenant-database.js'
import { RLS_SCHEMA, TENANT_COLUMN } from '../database/shared/rls-sql.js'
import { pgCode } from '../database/pg-errors.js'
import { MoveStalledError } from '../errors.js'
import { literal, quoteAny, tenantTables } from './replication.js'
import type { Fence } from './source-fence.js'
import { waitUntil } from './wait-until.js'

/** The function the fences' triggers call (one for every tenant; each trigger names its tenant). */
const REFUSE = `${RLS_SCHEMA}.refuse_moving_tenant`
const LOCK_NOT_AVAILABLE = '55P03'

/** The fence's trigger names on each table: one for rows written, one for rows changed or removed. */
function triggers (key: string): [string, string] {
  const id = key.replaceAll('-', '')
  return [`fst_fence_new_${id}`, `fst_fence_old_${id}`]
}

/**
 * The fence around one tenant's rows in the shared tables at the switch of
 * an isolate. Every other tenant keeps writing the same tables through the
 * same connections, so neither the database nor a schema can be closed:
 * each table gets two row triggers that refuse a write of this tenant's rows
 * only. Creating them waits for the transactions writing the table to end
 * (a lock they hold), so a write of the tenant's rows committed before the
 * fence (and is replicated or copied) or fails; none is lost. Other tenants'
 * writes wait at most `lock_timeout` per try behind the fence's lock; no
 * other tenant's session is ever ended. Reads still work.
 */
export async function prepareRowFence (ownerUrl: string, schema: string, key: string): Promise<Fence> {
  const client = new pg.Client({ connectionString: ownerUrl, application_name: 'fastify-tenancy:move' })
  client.on('error', () => {})
  await client.connect()
  const [onNew, onOld] = triggers(key)
  const raiseOnce = async (): Promise<boolean> => {
    // Only the tables still without the fence are locked: a fence left up by a crash is not taken down and up again
    // (that would lock every tenant's reads too).
    const missing = await unfenced(client, schema, onNew, onOld)
    if (missing.length === 0) return true
    await client.query('begin')
    try {
      // Short: while this waits for a table's writers, other tenants' new writes queue behind it.
      await client.query('set local lock_timeout = 200')
      const exists = (await client.query('select 1 from pg_proc where oid = to_regprocedure($1)', [`${REFUSE}()`])).rowCount === 1
      if (!exists) {
        await client.query(`create function ${REFUSE}() returns trigger language plpgsql as $$
          begin raise exception 'this tenant is moving; its rows here are fenced' using errcode = '55000'; end $$`)
      }
      await client.query(`lock table ${missing.map((t) => t.quoted).join(', ')} in share row exclusive mode`)
      for (const t of missing) {
        if (!t.onNew) await client.query(`create trigger ${onNew} before insert or update on ${t.quoted} for each row when (new.${TENANT_COLUMN} = ${literal(key)}) execute function ${REFUSE}()`)
        if (!t.onOld) await client.query(`create trigger ${onOld} before update or delete on ${t.quoted} for each row when (old.${TENANT_COLUMN} = ${literal(key)}) execute function ${REFUSE}()`)
      }
      await client.query('commit')
      return true
    } catch (error) {
      await client.query('rollback').catch(() => {})
      // Another fence made the function at the same moment: try again.
      if (RETRY.has(pgCode(error))) return false
      throw error
    }
  }
  const raise = async (drainMs: number): Promise<void> => {
    await waitUntil(async () => await raiseOnce() ? true : undefined,
      { timeoutMs: drainMs + 10_000, everyMs: 20, onTimeout: () => new MoveStalledError('the shared tables stayed locked by other transactions; the tenant\'s rows could not be fenced') })
  }
  try {
    // A fence left up by a crash stays up; raising it again only adds what is missing.
    const up = (await client.query('select 1 from pg_trigger where tgname = $1 limit 1', [onNew])).rowCount === 1
    if (up) await raise(0)
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }
  return { client, raise, close: async () => { await client.end().catch(() => {}) } }
}

/** Lock waits, a function made by another fence at once: worth another try. */
const RETRY = new Set([LOCK_NOT_AVAILABLE, '42723', 'XX000', '40P01'])

/** The tenant tables of `schema` that lack one of the fence's two triggers, and which. */
async function unfenced (
  client: pg.ClientBase, schema: string, onNew: string, onOld: string
): Promise<Array<{ quoted: string, onNew: boolean, onOld: boolean }>> {
  const tables = await tenantTables(client, schema)
  const { rows } = await client.query<{ table: string, tgname: string }>(`
    select c.relname as table, t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and t.tgname = any($2::text[]) and t.tgparentid = 0`, [schema, [onNew, onOld]])
  const has = new Set(rows.map((r) => `${r.table}\u0000${r.tgname}`))
  return tables
    .map((t) => ({ quoted: t.quoted, onNew: has.has(`${t.table}\u0000${onNew}`), onOld: has.has(`${t.table}\u0000${onOld}`) }))
    .filter((t) => !t.onNew || !t.onOld)
}

/**
 * Takes a tenant's row fence down: its rows in the shared tables take writes
 * again (an isolate undone, a kept source deleted). Dropping a trigger locks
 * its table against every tenant, reads too: each try waits at most 200 ms,
 * and tries again until every trigger is gone.
 */
export async function lowerRowFence (ownerUrl: string, schema: string, key: string): Promise<void> {
  const [onNew, onOld] = triggers(key)
  await withServer(ownerUrl, async (c) => {
    const left = async (): Promise<Array<{ tgname: string, rel: string }>> => (await c.query<{ tgname: string, rel: string }>(`
      select t.tgname, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as rel
        from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and t.tgname = any($2::text[]) and t.tgparentid = 0`, [schema, [onNew, onOld]])).rows
    await waitUntil(async () => {
      for (const r of await left()) {
        await c.query('begin')
        try {
          await c.query('set local lock_timeout = 200')
          await c.query(`drop trigger if exists ${quoteAny(r.tgname)} on ${r.rel}`)
          await c.query('commit')
        } catch (error) {
          await c.query('rollback').catch(() => {})
          if (pgCode(error) !== LOCK_NOT_AVAILABLE) throw error
        }
      }
      return (await left()).length === 0 ? true : undefined
    }, { timeoutMs: 60_000, everyMs: 20, onTimeout: () => new MoveStalledError('the shared tables stayed locked by other transactions; the fence on the tenant\'s rows could not be taken down') })
  })
}
