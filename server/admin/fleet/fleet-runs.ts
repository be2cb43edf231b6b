import type { MikroORM } from '@mikro-orm/postgresql'
import type { TenancyApi } from '../../tenancy-api.js'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'
import { isUniqueViolation } from '../../database/pg-errors.js'

export interface FleetRun {
  id: number
  startedBy: string
  startedAt: Date
  finishedAt: Date | null
  interrupted: boolean
  total: number
  done: number
  failed: number
  failures: Array<{ identifier: string, key: string, error: string }>
  running: boolean
}

/** A run with no progress for this long is taken as lost (its instance stopped). */
const STALE = '5 minutes'

function toRun (r: Record<string, any>): FleetRun {
  return {
    id: Number(r.id),
    startedBy: r.started_by,
    startedAt: new Date(r.started_at),
    finishedAt: r.finished_at === null ? null : new Date(r.finished_at),
    interrupted: r.interrupted === true,
    total: Number(r.total),
    done: Number(r.done),
    failed: Number(r.failed),
    failures: (typeof r.failures === 'string' ? JSON.parse(r.failures) : r.failures) ?? [],
    running: r.finished_at === null
  }
}

/**
 * "Migrate all" over the fleet, with its progress in a row of the central
 * database: any page load, on any instance, reads where it is. One run at a
 * time (a unique index decides between two operators); a run whose instance
 * died is marked interrupted once it has made no progress for a while.
 */
export class FleetRuns {
  constructor (private readonly orm: MikroORM, private readonly tenancy: TenancyApi) {}

  /** The central tables' names in SQL. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private async sql (text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await centralSql(this.orm)(text, params)
  }

  async latest (): Promise<FleetRun | null> {
    await this.sql(`update ${this.t.admin_fleet_runs} set finished_at = now(), interrupted = true where finished_at is null and heartbeat_at < now() - interval '${STALE}'`)
    const rows = await this.sql(`select * from ${this.t.admin_fleet_runs} order by id desc limit 1`)
    return rows[0] === undefined ? null : toRun(rows[0])
  }

  /** Starts a run in the background; null when one is running already. */
  async start (startedBy: string, concurrency = 4): Promise<FleetRun | null> {
    await this.latest()
    const counts = await this.tenancy.tenants.counts()
    const total = (counts.byStatus.active ?? 0) + (counts.byStatus.suspended ?? 0)
    let row: Record<string, any> | undefined
    try {
      row = (await this.sql(`insert into ${this.t.admin_fleet_runs} (started_by, total) values (?, ?) returning *`, [startedBy, total]))[0]
    } catch (error) {
      if (isUniqueViolation(error)) return null
      throw error
    }
    const run = toRun(row as Record<string, any>)
    // Errors end up in the row (failures) or mark the run finished; nothing escapes as an unhandled rejection.
    void this.work(run.id, concurrency).catch(() => {})
    return run
  }

  private async work (id: number, concurrency: number): Promise<void> {
    // Progress writes are chained so they land in order and the last one is done before the run is marked finished.
    let writes = Promise.resolve()
    try {
      await this.tenancy.migrate({
        concurrency,
        onResult: (result) => {
          writes = writes.then(async () => {
            await this.sql(`update ${this.t.admin_fleet_runs} set done = done + 1, failed = failed + ?, heartbeat_at = now(),
                failures = case when ? then failures || ?::jsonb else failures end where id = ?`,
            [result.ok ? 0 : 1, !result.ok, JSON.stringify([{ identifier: result.identifier, key: result.key, error: result.error ?? 'failed' }]), id])
          }).catch(() => {})
        }
      })
    } finally {
      await writes
      await this.sql(`update ${this.t.admin_fleet_runs} set finished_at = now(), heartbeat_at = now() where id = ? and finished_at is null`, [id]).catch(() => {})
    }
  }
}
