import type { FastifyBaseLogger } from 'fastify'
import type { RolloutsApi } from '../../rollouts/rollout-types.js'

/**
 * Rollouts this admin process runs in the background: a rollout takes
 * minutes, longer than a request should. Pages read the ledger
 * (`rollouts.get`), so progress shows on every instance; this only keeps a
 * handle on each run it started, so a halt can wait for its tenants in
 * flight and a failure is logged instead of thrown.
 */
export class RolloutRuns {
  private readonly running = new Map<string, Promise<void>>()

  constructor (private readonly rollouts: RolloutsApi, private readonly log: FastifyBaseLogger) {}

  /** Whether this process runs the rollout right now. */
  isRunning (id: string): boolean {
    return this.running.has(id)
  }

  /** Runs (or, with `resume`, gives the go to or continues) a rollout without waiting for it. */
  start (id: string, resume: boolean): void {
    if (this.running.has(id)) return
    const run = resume ? this.rollouts.resume(id) : this.rollouts.run(id)
    const tracked = run.then(() => {}, (error: unknown) => {
      this.log.error({ err: error, rollout: id }, 'fastify-tenancy admin: a rollout stopped with an error')
    }).finally(() => { this.running.delete(id) })
    this.running.set(id, tracked)
  }

  /** Waits for this process's run of the rollout to stop (after a halt: its tenants in flight finish). */
  async stopped (id: string): Promise<void> {
    await this.running.get(id)
  }

  /** Waits for every run this process drives (at close: the ledger resumes a cut run, but waiting is kinder). */
  async settled (): Promise<void> {
    await Promise.all([...this.running.values()])
  }
}
