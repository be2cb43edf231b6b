import type { FastifyBaseLogger } from 'fastify'
import type { TenancyApi } from '../../tenancy-api.js'
import type { Tenant } from '../../tenant.js'
import type { MoveRecord } from '../../moves/move-store.js'

/**
 * Moves started from this admin process, run in the background: a move takes
 * minutes, longer than a request should. The page that started one polls the
 * steps the move records (`moves.status`), so progress shows on every
 * instance; this only knows which moves this process is driving.
 */
export class MoveRuns {
  private readonly running = new Map<string, Promise<void>>()

  constructor (private readonly move: TenancyApi['move'], private readonly log: FastifyBaseLogger) {}

  /** Whether this process is driving a move of the tenant right now. */
  isRunning (key: string): boolean {
    return this.running.has(key)
  }

  /**
   * Starts (or, after a crash, finishes) a move. Resolves once the move has
   * passed its checks and done its first step, so a refusal (no logical
   * replication, a move to another host under way) comes back to the admin
   * at once; rejects with that refusal. `onEnd` hears the outcome.
   */
  async start (tenant: Pick<Tenant, 'key'>, host: string, onEnd: (outcome: MoveRecord | Error) => Promise<void>): Promise<void> {
    if (this.running.has(tenant.key)) return
    let firstStep = (): void => {}
    const stepped = new Promise<void>((resolve) => { firstStep = resolve })
    const run = this.move(tenant, { host, onStep: () => { firstStep() } })
    const tracked = run.then(async (record) => { await onEnd(record) }, async (error: Error) => { await onEnd(error) })
      .catch((error: unknown) => { this.log.error({ err: error, tenant: tenant.key }, 'fastify-tenancy admin: recording a move\'s outcome failed') })
      .finally(() => { this.running.delete(tenant.key) })
    this.running.set(tenant.key, tracked)
    await Promise.race([stepped, run.then(() => {})])
  }

  /** Waits for the moves this process drives (at close: a move cut short can be finished or aborted, but waiting is kinder). */
  async settled (): Promise<void> {
    await Promise.all([...this.running.values()])
  }
}
