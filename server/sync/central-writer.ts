import type { MikroORM } from '@mikro-orm/postgresql'
import type { Knex } from '@mikro-orm/postgresql'
import type { SyncChange } from './change.js'
import type { Run } from './run.js'
import type { Deliveries, RecordedDelivery } from './deliveries.js'
import { centralSql } from '../database/central-sql.js'

/** A central transaction of the syncer's own: its statements, and deliveries recorded in it. */
export interface CentralTx {
  run: Run
  /** Records deliveries in this transaction; they are handed over once it commits. */
  record: (changes: SyncChange[]) => Promise<void>
}

/** Runs the syncer's own central transactions (attach, detach, resync, forwards). */
export class CentralWriter {
  private readonly orm: MikroORM
  private readonly deliveries: Deliveries
  private readonly track: (work: Promise<void>) => Promise<void>

  /** `track` runs the after-commit delivery, counted as work under way. */
  constructor (orm: MikroORM, deliveries: Deliveries, track: (work: Promise<void>) => Promise<void>) {
    this.orm = orm
    this.deliveries = deliveries
    this.track = track
  }

  /** Runs `fn` in one central transaction, then hands over what it recorded. */
  async run<T> (fn: (tx: CentralTx) => Promise<T>): Promise<T> {
    const recorded: RecordedDelivery[] = []
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const result = await em.transactional(async (tem) => {
      const conn = tem.getConnection()
      const trx = tem.getTransactionContext() as Knex.Transaction
      return await fn({
        run: async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx),
        record: async (changes) => { if (changes.length > 0) recorded.push(...await this.deliveries.record(trx, changes)) }
      })
    })
    if (recorded.length > 0) await this.track(this.deliveries.committed(recorded))
    return result
  }

  /** One statement outside any transaction. */
  async read (sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await centralSql(this.orm)(sql, params)
  }
}
