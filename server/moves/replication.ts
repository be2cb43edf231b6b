import type pg from 'pg'
import { TENANT_COLUMN } from '../database/shared/rls-sql.js'
import { quoteIdent } from '../database/names.js'
import { withServer } from '../database/tenant-database.js'
import { waitUntil } from './wait-until.js'
import { MoveStalledError } from '../errors.js'

/**
 * PostgreSQL's logical replication from a tenant's source database (or
 * schema) to its target: a publication of the tenant's tables on the source,
 * a subscription on the target that copies their rows and then streams every
 * change. Everything here is idempotent, so a move cut short runs it again.
 */

/** Where a side of the replication is: a database URL, and the tenant's schema in it (strategy `schema`) or null. */
export interface ReplicaSide {
  /** URL of the database holding the tenant's tables. */
  url: string
  /** The tenant's schema (strategy `schema`), or null for a database of its own. */
  schema: string | null
}

/** The table that records a tenant's migrations: the target has its own rows, made by running them. */
const MIGRATIONS_TABLE = 'fastify_tenancy_migrations'

/** One name for the publication, the subscription and its slot: from the tenant's key, unique on every server. */
export function replicationName (tenantKey: string): string {
  return `fastify_tenancy_move_${tenantKey.replaceAll('-', '')}`
}

/** A quoted `schema.table` of the tenant's tables, every one but the migrations table. */
export async function tenantTables (
  client: pg.ClientBase, schema: string | null
): Promise<Array<{ schema: string, table: string, quoted: string, hasKey: boolean }>> {
  const { rows } = await client.query<{ schema: string, table: string, has_key: boolean }>(`
    select n.nspname as schema, c.relname as table,
           (c.relreplident in ('f', 'i') or exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)) as has_key
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and not c.relispartition
       and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
       and ($1::text is null or n.nspname = $1)
       and c.relname <> $2
     order by 1, 2`, [schema, MIGRATIONS_TABLE])
  return rows.map((r) => ({ schema: r.schema, table: r.table, quoted: `${quoteAny(r.schema)}.${quoteAny(r.table)}`, hasKey: r.has_key }))
}

/** Quotes any identifier PostgreSQL gave us (tenant tables may have names our safe-name rule refuses). */
export function quoteAny (name: string): string {
  return '"' + name.replaceAll('"', '""') + '"'
}

/** A string as a SQL literal. */
export function literal (value: string): string {
  return "'" + value.replaceAll("'", "''") + "'"
}

/**
 * Why the two servers cannot replicate the tenant online, as sentences (none:
 * they can). The source needs wal_level = logical and a role that may
 * replicate; the target a role that may subscribe; every table a primary key
 * (or a replica identity), or updates on the source would fail while it is
 * published.
 */
export async function replicationProblems (
  source: ReplicaSide, target: ReplicaSide, sourceHost: string, targetHost: string, rowSecurityRole?: string
): Promise<string[]> {
  const problems: string[] = []
  await withServer(source.url, async (c) => {
    const { rows: [s] } = await c.query<{ wal_level: string, can_replicate: boolean, slots: number, senders: number }>(`
      select current_setting('wal_level') as wal_level, (r.rolsuper or r.rolreplication) as can_replicate,
             current_setting('max_replication_slots')::int as slots, current_setting('max_wal_senders')::int as senders
        from pg_roles r where r.rolname = current_user`)
    if (s?.wal_level !== 'logical') problems.push(`wal_level is "${s?.wal_level ?? '?'}" on host "${sourceHost}" (it must be logical; changing it needs a restart)`)
    if (s?.can_replicate !== true) problems.push(`the role on host "${sourceHost}" has neither REPLICATION nor superuser`)
    if ((s?.slots ?? 0) < 1 || (s?.senders ?? 0) < 1) problems.push(`host "${sourceHost}" allows no replication slots or WAL senders`)
    const keyless = (await tenantTables(c, source.schema)).filter((t) => !t.hasKey)
    if (keyless.length > 0) problems.push(`table${keyless.length === 1 ? '' : 's'} ${keyless.map((t) => t.table).join(', ')} ha${keyless.length === 1 ? 's' : 've'} no primary key`)
  })
  await withServer(target.url, async (c) => {
    const { rows: [t] } = await c.query<{ can_subscribe: boolean, workers: number, bypasses: boolean }>(`
      select (r.rolsuper or pg_has_role(current_user, 'pg_create_subscription', 'member')) and has_database_privilege(current_database(), 'CREATE') as can_subscribe,
             current_setting('max_logical_replication_workers')::int as workers,
             coalesce((select o.rolsuper or o.rolbypassrls from pg_roles o where o.rolname = $1), true) as bypasses
        from pg_roles r where r.rolname = current_user`, [rowSecurityRole ?? null])
    if (t?.can_subscribe !== true) problems.push(`the role on host "${targetHost}" may not create subscriptions (it needs superuser or pg_create_subscription)`)
    // Shared-shape tables force row-level security: a subscription writes its rows as the tables' owner (PostgreSQL 16) or its own, held to no policy.
    if (rowSecurityRole !== undefined && t?.bypasses !== true) {
      problems.push(`the role "${rowSecurityRole}" that owns the tables is held to their row-level security, so replication cannot write the rows there (give it BYPASSRLS, or move --offline)`)
    }
    if ((t?.workers ?? 0) < 1) problems.push(`host "${targetHost}" allows no logical replication workers`)
  })
  return problems
}

/**
 * Why one tenant's rows of shared-shape tables cannot be published with a
 * row filter on `tenant_key` (none: they can). The filter needs PostgreSQL 15
 * on both sides (an older subscriber's first copy ignores it and would take
 * every tenant's rows), and `tenant_key` in each table's replica identity:
 * otherwise PostgreSQL refuses every tenant's updates and deletes on that
 * table while it is published.
 */
export async function rowFilterProblems (source: ReplicaSide, subscriberUrl: string, sourceHost: string, targetHost: string): Promise<string[]> {
  const problems: string[] = []
  const version = async (c: pg.ClientBase): Promise<number> => Number((await c.query<{ v: string }>('select current_setting(\'server_version_num\') as v')).rows[0]?.v ?? 0)
  await withServer(source.url, async (c) => {
    if (await version(c) < 150000) problems.push(`host "${sourceHost}" runs PostgreSQL before 15, which cannot publish one tenant's rows of shared tables`)
    const { rows } = await c.query<{ table: string }>(`
      select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> $2
         and not (c.relreplident = 'f' or exists (
           select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = c.oid and a.attname = $3
              and ((c.relreplident = 'd' and i.indisprimary) or (c.relreplident = 'i' and i.indisreplident))))
       order by 1`, [source.schema, MIGRATIONS_TABLE, TENANT_COLUMN])
    if (rows.length > 0) problems.push(`the replica identity of ${rows.map((r) => r.table).join(', ')} leaves out ${TENANT_COLUMN} (a key made per tenant has it first: tenants:rls)`)
  })
  await withServer(subscriberUrl, async (c) => {
    if (await version(c) < 150000) problems.push(`host "${targetHost}" runs PostgreSQL before 15, whose first copy would ignore the row filter`)
  })
  return problems
}

/**
 * Whether the target server can reach the source as a subscription will
 * (`sourceConnection`, from `moves.replicationUrls`): a subscription made
 * without a slot, never enabled, inside a transaction that is rolled back,
 * connects to the publisher all the same. Null when it can, else why not.
 */
export async function reachProblem (target: ReplicaSide, sourceConnection: string, sourceHost: string, targetHost: string): Promise<string | null> {
  return await withServer(target.url, async (c) => {
    await c.query('begin')
    try {
      await c.query(`create subscription fastify_tenancy_reach_probe connection ${literal(sourceConnection)} publication fastify_tenancy_reach_probe with (create_slot = false, enabled = false, slot_name = none)`)
      return null
    } catch (error) {
      const message = String((error as Error).message ?? error).replace(/\s+/g, ' ').slice(0, 300)
      // A publication the probe names does not exist: only a server that was reached can say so.
      if (/publication .* does not exist/.test(message)) return null
      return `host "${targetHost}" cannot reach host "${sourceHost}" as the subscription would (moves.replicationUrls["${sourceHost}"] or database.hosts["${sourceHost}"]): ${message}`
    } finally {
      await c.query('rollback').catch(() => {})
    }
  })
}

/**
 * Publishes the tenant's tables on the source (once); with `rowsOf`, only
 * that tenant's rows of shared tables (a row filter), and no TRUNCATE (it
 * would empty the table for every tenant on the other side).
 */
export async function publish (source: ReplicaSide, name: string, rowsOf?: string): Promise<void> {
  await withServer(source.url, async (c) => {
    const exists = (await c.query('select 1 from pg_publication where pubname = $1', [name])).rowCount === 1
    if (exists) return
    const tables = await tenantTables(c, source.schema)
    const filter = rowsOf === undefined ? '' : ` where (${TENANT_COLUMN} = ${literal(rowsOf)})`
    const only = rowsOf === undefined ? '' : ' with (publish = \'insert, update, delete\')'
    await c.query(tables.length === 0 ? `create publication ${quoteIdent(name)}` : `create publication ${quoteIdent(name)} for table ${tables.map((t) => t.quoted + filter).join(', ')}${only}`)
  })
}

export async function unpublish (source: ReplicaSide, name: string): Promise<void> {
  await withServer(source.url, async (c) => { await c.query(`drop publication if exists ${quoteIdent(name)}`) })
}

/**
 * Subscribes the target to the publication (once): it copies every table's
 * rows, then streams the source's changes. `sourceConnection` is how the
 * target server reaches the source database.
 */
export async function subscribe (target: ReplicaSide, name: string, sourceConnection: string): Promise<void> {
  await withServer(target.url, async (c) => {
    if (await subscriptionExists(c, name)) return
    await c.query(`create subscription ${quoteIdent(name)} connection ${literal(sourceConnection)} publication ${quoteIdent(name)} with (copy_data = true, slot_name = ${literal(name)})`)
  })
}

async function subscriptionExists (c: pg.ClientBase, name: string): Promise<boolean> {
  return (await c.query('select 1 from pg_subscription where subname = $1 and subdbid = (select oid from pg_database where datname = current_database())', [name])).rowCount === 1
}

/** The subscription's error counts (a row the target refused, say): a copy that fails only retries in the server log. */
async function subscriptionErrors (c: pg.ClientBase, name: string): Promise<number> {
  const { rows } = await c.query<{ n: number }>('select (apply_error_count + sync_error_count)::int as n from pg_stat_subscription_stats where subname = $1', [name])
  return rows[0]?.n ?? 0
}

/** Waits until every table's rows are copied and the subscription streams (all tables ready). */
export async function waitCopied (target: ReplicaSide, name: string, timeoutMs: number): Promise<void> {
  await withServer(target.url, async (c) => {
    await waitUntil(async () => {
      const { rows: [r] } = await c.query<{ pending: number }>(`
        select count(*) filter (where r.srsubstate <> 'r')::int as pending from pg_subscription_rel r
          join pg_subscription s on s.oid = r.srsubid where s.subname = $1`, [name])
      if (await subscriptionErrors(c, name) > 0) throw new MoveStalledError("the subscription on the target reports errors while copying (see the target server's log)")
      return r?.pending === 0 ? true : undefined
    }, { timeoutMs, everyMs: 50, onTimeout: () => new MoveStalledError(`the tenant's rows were not copied within ${timeoutMs} ms`) })
  })
}

/**
 * The source server's WAL insert position: everything committed there so far
 * is before it. Not `pg_current_wal_lsn()`, the write position: under
 * `synchronous_commit = off` a commit already acknowledged to the app can lie
 * past it, and a target "caught up" to it would miss that write.
 */
export async function walPosition (client: pg.ClientBase): Promise<string> {
  return (await client.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn')).rows[0]?.lsn as string
}

/** Waits until the target has received the source's changes up to `lsn` (and so applied them: it applies in order before it confirms). */
export async function waitCaughtUp (target: ReplicaSide, name: string, lsn: string, timeoutMs: number): Promise<void> {
  await withServer(target.url, async (c) => { await caughtUp(c, name, lsn, timeoutMs, 5) })
}

/**
 * `waitCaughtUp` through an open connection to the target database, polling
 * every `everyMs` (requests are held meanwhile at the switch, so it looks
 * often; one query a look).
 */
export async function caughtUp (c: pg.ClientBase, name: string, lsn: string, timeoutMs: number, everyMs = 2): Promise<void> {
  await waitUntil(async () => {
    const { rows } = await c.query<{ done: boolean, errors: number }>(`
      select bool_or(s.latest_end_lsn >= $2::pg_lsn) as done,
             coalesce((select (apply_error_count + sync_error_count)::int from pg_stat_subscription_stats where subname = $1), 0) as errors
        from pg_stat_subscription s where s.subname = $1 and s.relid is null`, [name, lsn])
    if ((rows[0]?.errors ?? 0) > 0) throw new MoveStalledError('the subscription on the target reports errors while streaming (see the target server\'s log)')
    return rows[0]?.done === true ? true : undefined
  }, { timeoutMs, everyMs, onTimeout: () => new MoveStalledError(`the target did not catch up with the source within ${timeoutMs} ms`) })
}

/**
 * Drops the subscription without reaching the source (it may be closed to
 * connections by then): the slot is detached first and dropped on the
 * source's server afterwards (`dropSlot`).
 */
export async function unsubscribe (target: ReplicaSide, name: string): Promise<void> {
  await withServer(target.url, async (c) => {
    if (!await subscriptionExists(c, name)) return
    await c.query(`alter subscription ${quoteIdent(name)} disable`)
    await c.query(`alter subscription ${quoteIdent(name)} set (slot_name = none)`)
    await c.query(`drop subscription ${quoteIdent(name)}`)
  })
}

/**
 * Drops the replication slot on the source's server (from any database of
 * it), once its WAL sender has gone: a slot left behind would keep the
 * server's WAL forever.
 */
export async function dropSlot (sourceServerUrl: string, name: string, timeoutMs: number): Promise<void> {
  await withServer(sourceServerUrl, async (c) => {
    const present = await waitUntil(async () => {
      const { rows } = await c.query<{ active: boolean }>('select active from pg_replication_slots where slot_name = $1', [name])
      if (rows[0] === undefined) return false
      return rows[0].active ? undefined : true
    }, { timeoutMs, everyMs: 20, onTimeout: () => new MoveStalledError(`the replication slot ${name} stayed in use for ${timeoutMs} ms`) })
    if (present) await c.query('select pg_drop_replication_slot($1) where exists (select 1 from pg_replication_slots where slot_name = $1)', [name])
  })
}
