import type { MikroORM } from '@mikro-orm/postgresql'
import type { SqlExecutor } from '../providers/provider.js'
import { centralTransaction } from '../database/central-transaction.js'
import { centralTables, type CentralTables } from '../database/central-schema.js'
import type { TenantIsolation } from '../tenant.js'

/**
 * The steps of a move, in the order an online move passes them; an offline
 * move passes `held` and `fenced` before `copied`. A step is
 * recorded once it is done, so a move cut short starts again after it.
 */
export const MOVE_STEPS = ['started', 'target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done'] as const
export type MoveStep = typeof MOVE_STEPS[number]
export type MoveMode = 'online' | 'offline'
export type MoveState = 'running' | 'done' | 'aborted'

/** One move of one tenant, as `tenant_moves` records it. */
export interface MoveRecord {
  id: string
  tenantKey: string
  mode: MoveMode
  fromHost: string
  toHost: string
  /** Strategy `shared`: `'database'` or `'schema'` where the move leaves or reaches an isolated database or schema, null for the shared tables. */
  fromIsolation: TenantIsolation | null
  toIsolation: TenantIsolation | null
  /** The tenant's database (or schema) name: the same on both hosts. */
  databaseName: string
  step: MoveStep
  state: MoveState
  error: string | null
  startedAt: Date
  updatedAt: Date
  switchedAt: Date | null
  /** When the source copy may be dropped (after the switch). */
  keepUntil: Date | null
  sourceDroppedAt: Date | null
}

function isolationOf (value: unknown): TenantIsolation | null {
  return value === 'database' || value === 'schema' ? value : null
}

function record (row: Record<string, unknown>): MoveRecord {
  const date = (v: unknown): Date | null => v == null ? null : new Date(v as string)
  return {
    id: String(row.id),
    tenantKey: String(row.tenant_key),
    mode: row.mode as MoveMode,
    fromHost: String(row.from_host),
    toHost: String(row.to_host),
    fromIsolation: isolationOf(row.from_isolation),
    toIsolation: isolationOf(row.to_isolation),
    databaseName: String(row.database_name),
    step: row.step as MoveStep,
    state: row.state as MoveState,
    error: (row.error as string | null) ?? null,
    startedAt: date(row.started_at) as Date,
    updatedAt: date(row.updated_at) as Date,
    switchedAt: date(row.switched_at),
    keepUntil: date(row.keep_until),
    sourceDroppedAt: date(row.source_dropped_at)
  }
}

/**
 * Every statement on `tenant_moves`, and on the two columns of `tenants` a
 * move writes (`held_at`, `database_host`). Changing `tenants` fires its row
 * trigger, so every instance hears of a hold and of a switch.
 */
export class MoveStore {
  private readonly t: CentralTables

  constructor (private readonly orm: MikroORM, private readonly execute: SqlExecutor) {
    this.t = centralTables(orm)
  }

  /** The tenant's move that has not finished (running), or null. */
  async running (tenantKey: string): Promise<MoveRecord | null> {
    const rows = await this.execute(`select * from ${this.t.tenant_moves} where tenant_key = ? and state = 'running'`, [tenantKey])
    return rows[0] === undefined ? null : record(rows[0])
  }

  /** The tenant's moves, newest first. */
  async history (tenantKey: string, limit = 20): Promise<MoveRecord[]> {
    return (await this.execute(`select * from ${this.t.tenant_moves} where tenant_key = ? order by id desc limit ?`, [tenantKey, limit])).map(record)
  }

  async begin (move: Pick<MoveRecord, 'tenantKey' | 'mode' | 'fromHost' | 'toHost' | 'fromIsolation' | 'toIsolation' | 'databaseName'>): Promise<MoveRecord> {
    const rows = await this.execute(
      `insert into ${this.t.tenant_moves} (tenant_key, mode, from_host, to_host, from_isolation, to_isolation, database_name, step) values (?, ?, ?, ?, ?, ?, ?, 'started') returning *`,
      [move.tenantKey, move.mode, move.fromHost, move.toHost, move.fromIsolation, move.toIsolation, move.databaseName])
    return record(rows[0] as Record<string, unknown>)
  }

  async step (id: string, step: MoveStep): Promise<void> {
    await this.execute(`update ${this.t.tenant_moves} set step = ?, error = null, updated_at = now() where id = ?`, [step, id])
  }

  /** Notes why a step failed (the move stays running: `move` again retries it, `--abort` undoes it). */
  async failed (id: string, error: string): Promise<void> {
    await this.execute(`update ${this.t.tenant_moves} set error = ?, updated_at = now() where id = ?`, [error.slice(0, 2000), id])
  }

  /** Holds (or releases) the tenant's requests on every instance. */
  async hold (tenantKey: string, held: boolean): Promise<void> {
    await this.execute(`update ${this.t.tenants} set held_at = ${held ? 'now()' : 'null'} where key = ? and (held_at is ${held ? '' : 'not '}null)`, [tenantKey])
  }

  /**
   * The switch, in one transaction: the tenant's row points at the new host
   * and is no longer held (its change notice sends every instance there), and
   * the move is recorded as switched with the time its source is kept until.
   */
  async switch (move: MoveRecord, keepMs: number): Promise<void> {
    await centralTransaction(this.orm, async (run) => {
      await run(`update ${this.t.tenants} set database_host = ?, isolation = ?, held_at = null, updated_at = now() where key = ?`, [move.toHost, move.toIsolation, move.tenantKey])
      await run(`update ${this.t.tenant_moves} set step = 'switched', error = null, switched_at = now(), keep_until = now() + (? * interval '1 millisecond'), updated_at = now() where id = ?`, [keepMs, move.id])
    })
  }

  async finish (id: string, state: 'done' | 'aborted'): Promise<void> {
    await this.execute(`update ${this.t.tenant_moves} set state = ?, step = case when ? = 'done' then 'done' else step end, updated_at = now() where id = ?`, [state, state, id])
  }

  /** Finished moves whose kept source is due to be dropped. */
  async dueSources (): Promise<MoveRecord[]> {
    return (await this.execute(`select * from ${this.t.tenant_moves} where state = 'done' and source_dropped_at is null and keep_until <= now() order by id`, [])).map(record)
  }

  /** Finished moves whose kept source is the database `name` on `host` (`isolation`: an isolated one); a move back there replaces it. */
  async keptOn (host: string, name: string, isolation: TenantIsolation | null = null): Promise<MoveRecord[]> {
    return (await this.execute(`select * from ${this.t.tenant_moves} where state = 'done' and source_dropped_at is null and from_host = ? and database_name = ? and from_isolation is not distinct from ?`,
      [host, name, isolation])).map(record)
  }

  /** Strategy `shared`: the tenant's finished isolates whose source (its rows in the shared tables) is still kept (a consolidate replaces them). */
  async keptInShared (tenantKey: string): Promise<MoveRecord[]> {
    return (await this.execute(`select * from ${this.t.tenant_moves} where state = 'done' and source_dropped_at is null and tenant_key = ? and from_isolation is null`, [tenantKey])).map(record)
  }

  async sourceDropped (id: string): Promise<void> {
    await this.execute(`update ${this.t.tenant_moves} set source_dropped_at = now(), updated_at = now() where id = ?`, [id])
  }

  /** The tenant's database host now (null: the default host) and its isolation, straight from the central database; undefined for no tenant. */
  async placementOf (tenantKey: string): Promise<{ host: string | null, isolation: TenantIsolation | null } | undefined> {
    const rows = await this.execute(`select database_host, isolation from ${this.t.tenants} where key = ?`, [tenantKey])
    const row = rows[0]
    return row === undefined ? undefined : { host: (row.database_host as string | null) ?? null, isolation: isolationOf(row.isolation) }
  }
}
