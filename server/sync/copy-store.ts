import type { Connection } from '@mikro-orm/core'
import type { Run } from './run.js'
import { ident, type SyncedResource } from './resource.js'
import { deleteWaiting } from './tenant-outbox.js'

/** Runs `fn` in a transaction of `conn`, with a statement runner bound to it. */
export async function inTransaction<T> (conn: Connection, fn: (run: Run) => Promise<T>): Promise<T> {
  return await conn.transactional(async (trx) => await fn(async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)))
}

/** What an update of one copy did: changed it, found it equal or older than it holds, or found no copy. */
export type CopyUpdate = 'changed' | 'unchanged' | 'missing'

/** What the syncer does to the copies of one tenant, inside one transaction. */
export interface CopyTransaction {
  /**
   * Serializes work on one resource's copy in this tenant until the
   * transaction ends, and locks the copy's row when there is one: the lock
   * order of every writer of a copy is this lock, the copy's row, then its
   * version (an app deleting its copy takes the row, then the version).
   */
  lock: (resource: SyncedResource, globalId: string) => Promise<void>
  /** Whether the tenant has a copy. */
  exists: (resource: SyncedResource, globalId: string) => Promise<boolean>
  /** Whether the tenant deleted its copy in a change it has not forwarded yet (so it stays deleted). */
  deletedHere: (resource: SyncedResource, globalId: string) => Promise<boolean>
  /** Inserts a copy (tenant columns) and records the version it holds. */
  insert: (resource: SyncedResource, row: Record<string, unknown>, version: string) => Promise<void>
  /** Writes columns (tenant columns) of an existing copy when `version` is newer than the copy's. */
  update: (resource: SyncedResource, globalId: string, values: Record<string, unknown>, version: string) => Promise<CopyUpdate>
  /** Removes a copy; true when there was one. */
  remove: (resource: SyncedResource, globalId: string) => Promise<boolean>
}

/**
 * The write path of tenant copies. The shipped one writes into each tenant's
 * own database or schema; a strategy with shared tables can give its own.
 */
export interface CopyStore {
  /** Runs `fn` in one transaction over tenant `tenantKey`'s copies; undefined when the tenant no longer exists. */
  transaction: <R>(tenantKey: string, fn: (tx: CopyTransaction) => Promise<R>) => Promise<R | undefined>
  /**
   * Optional fast path of the fan-out: `lock` then `update` of one copy in one
   * transaction, with nothing read elsewhere in between, so a store may send
   * both in one round trip. Same result as `transaction` with `lock` and
   * `update`; undefined when the tenant no longer exists.
   */
  lockedUpdate?: (
    tenantKey: string, resource: SyncedResource, globalId: string, values: Record<string, unknown>, version: string
  ) => Promise<CopyUpdate | undefined>
}

type Statement = [sql: string, params: unknown[]]

// Every statement on a tenant's versions (the version each copy holds).
const VERSIONS = 'fastify_tenancy_sync_state'

/** One key per resource and global id (an attach's insert and an update of the same copy never interleave), then the copy's row. */
function lockStatement (r: SyncedResource, globalId: string): Statement {
  return [`select pg_advisory_xact_lock(hashtextextended(?, 0)); select 1 from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ? for update`,
    [`fastify_tenancy_sync:${r.name}:${globalId}`, globalId]]
}

/**
 * One statement, run under the lock: the copy must exist, the version must
 * be newer (then it is taken), and only a real difference is a write (the
 * origin of a change gets it back and writes nothing). Its one row says
 * whether the copy changed and whether there is one.
 */
function updateStatement (r: SyncedResource, globalId: string, values: Record<string, unknown>, version: string): Statement {
  const cols = Object.keys(values)
  const copy = `${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ?`
  const write = cols.length === 0
    ? 'select 1 where false'
    : `update ${ident(r.tenant.table)} set ${cols.map((c) => `${ident(c)} = ?`).join(', ')}
       where ${ident(r.tenant.globalIdColumn)} = ? and exists (select 1 from v)
         and (${cols.map(ident).join(', ')}, null) is distinct from (${cols.map(() => '?').join(', ')}, null)
       returning 1`
  return [
    `with v as (
       insert into ${VERSIONS} as s (resource, global_id, version)
       select ?, ?, ? where exists (select 1 from ${copy})
       on conflict on constraint fastify_tenancy_sync_state_pkey do update set version = excluded.version where s.version < excluded.version
       returning 1),
     u as (${write})
     select exists (select 1 from u) as changed, exists (select 1 from ${copy}) as present`,
    [r.name, globalId, version, globalId, ...(cols.length === 0 ? [] : [...cols.map((c) => values[c]), globalId, ...cols.map((c) => values[c])]), globalId]
  ]
}

function updateResult (row: Record<string, unknown> | undefined): CopyUpdate {
  return row?.changed === true ? 'changed' : row?.present === true ? 'unchanged' : 'missing'
}

function copyTransaction (run: Run): CopyTransaction {
  return {
    async lock (r, globalId) {
      await run(...lockStatement(r, globalId))
    },
    async exists (r, globalId) {
      return (await run(`select 1 from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ?`, [globalId])).length > 0
    },
    async deletedHere (r, globalId) {
      return await deleteWaiting(run, r.name, globalId)
    },
    async insert (r, row, version) {
      const cols = Object.keys(row)
      await run(`insert into ${ident(r.tenant.table)} (${cols.map(ident).join(', ')}) values (${cols.map(() => '?').join(', ')})`, cols.map((c) => row[c]))
      await run(`insert into ${VERSIONS} as s (resource, global_id, version) values (?, ?, ?)
        on conflict on constraint fastify_tenancy_sync_state_pkey do update set version = greatest(s.version, excluded.version)`, [r.name, row[r.tenant.globalIdColumn], version])
    },
    async update (r, globalId, values, version) {
      return updateResult((await run(...updateStatement(r, globalId, values, version)))[0])
    },
    async remove (r, globalId) {
      const rows = await run(`delete from ${ident(r.tenant.table)} where ${ident(r.tenant.globalIdColumn)} = ? returning 1 as n`, [globalId])
      await run(`delete from ${VERSIONS} where resource = ? and global_id = ?`, [r.name, globalId])
      return rows.length > 0
    }
  }
}

/** Forgets the version a tenant's copy held, when the tenant deletes the copy (in its own transaction). */
export async function forgetCopyVersion (run: Run, r: SyncedResource, globalId: string): Promise<void> {
  await run(`delete from ${VERSIONS} where resource = ? and global_id = ?`, [r.name, globalId])
}

/** A leased connection to one tenant's tables, or null when the tenant is gone. */
export type TenantConnectionLease = (tenantKey: string) => Promise<{ conn: Connection, release: () => void } | null>

/** Runs `fn` as tenant `tenantKey` (strategy `shared`: its statements name that tenant), or as is. */
export type AsTenant = <R>(tenantKey: string, fn: () => Promise<R>) => Promise<R>

/**
 * Copies in each tenant's own database (strategy `database`), schema
 * (strategy `schema`), or its rows of the shared tables (strategy `shared`:
 * `asTenant` makes the tenant the context, so each statement names it, RLS
 * keeps the copy to it and its tenant key defaults to it).
 */
export function databaseCopyStore (lease: TenantConnectionLease, asTenant: AsTenant = async (_key, fn) => await fn()): CopyStore {
  return {
    async transaction (tenantKey, fn) {
      const held = await lease(tenantKey)
      if (held === null) return undefined
      try {
        return await asTenant(tenantKey, async () => await inTransaction(held.conn, async (run) => await fn(copyTransaction(run))))
      } finally {
        held.release()
      }
    },
    async lockedUpdate (tenantKey, r, globalId, values, version) {
      const held = await lease(tenantKey)
      if (held === null) return undefined
      try {
        // The locks and the update in one round trip (MikroORM inlines the parameters and sends the
        // text with the simple protocol): three statements, so the update reads the copy as it is once
        // the locks are taken. They run inside an explicit transaction, not the text's implicit one: a
        // process killed while the update waits on a lock never sends COMMIT, so it writes nothing.
        const [lockSql, lockParams] = lockStatement(r, globalId)
        const [updateSql, updateParams] = updateStatement(r, globalId, values, version)
        const results = await asTenant(tenantKey, async () => await inTransaction(held.conn, async (run) => await run(`${lockSql}; ${updateSql}`, [...lockParams, ...updateParams]) as unknown[]))
        const rows = results[results.length - 1]
        return updateResult(Array.isArray(rows) ? rows[0] as Record<string, unknown> : undefined)
      } finally {
        held.release()
      }
    }
  }
}
