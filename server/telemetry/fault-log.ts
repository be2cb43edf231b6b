import type { FastifyBaseLogger } from 'fastify'
import type { DatabaseFault } from '../database/database-faults.js'

export interface FaultLogOptions {
  /** A fault seen again within this long of the last time belongs to the same burst (ms). */
  quietMs: number
  now: () => number
}

interface Burst { last: number, suppressed: number }

/**
 * One warning per database fault and burst: the first time a place (the
 * central database, a tenant database host) fails, the warning has the
 * detail (kind, driver code, address, message); the same place failing again
 * before it has been quiet for `quietMs` is only counted, and the count is
 * told with the next burst's warning. A request never logs a stack trace of
 * its own for a fault.
 */
export class FaultLog {
  private readonly log: FastifyBaseLogger
  private readonly options: FaultLogOptions
  private readonly bursts = new Map<string, Burst>()

  constructor (log: FastifyBaseLogger, options: Partial<FaultLogOptions> = {}) {
    this.log = log
    this.options = { quietMs: options.quietMs ?? 30_000, now: options.now ?? Date.now }
  }

  report (where: string, fault: DatabaseFault): void {
    const now = this.options.now()
    const burst = this.bursts.get(where)
    if (burst !== undefined && now - burst.last < this.options.quietMs) {
      burst.last = now
      burst.suppressed++
      return
    }
    this.bursts.set(where, { last: now, suppressed: 0 })
    this.log.warn({
      database: where,
      fault: { kind: fault.kind, code: fault.code, address: fault.address, detail: fault.detail },
      ...(burst === undefined ? {} : { earlierBurstRepeats: burst.suppressed })
    }, `fastify-tenancy: ${where} is unavailable (${fault.kind}, ${fault.code}); answering 503 FST_TENANCY_DATABASE_UNAVAILABLE until it is back (further failures in this burst are not logged)`)
  }
}
