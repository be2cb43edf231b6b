import type { Rollout, RolloutCounts, RolloutStatus, RolloutSummary } from '../../rollouts/rollout-types.js'

/** A rollout as the Fleet page and its own page show it. */
export interface RolloutView {
  id: string
  operation: string
  startedBy: string
  status: RolloutStatus
  /** What the status means, in the page's words. */
  statusText: string
  haltReason: string | null
  counts: RolloutCounts
  total: number
  /** Tenants finished (done, failed or skipped), for the progress bar. */
  finished: number
  percent: number
  started: string
  /** Halt applies to a running or waiting rollout; Resume to a waiting or halted one (or one whose runner died). */
  canHalt: boolean
  canResume: boolean
}

const STATUS_WORDS: Record<RolloutStatus, string> = {
  running: 'running',
  waiting: 'waiting for a go',
  halted: 'halted',
  done: 'done',
  failed: 'finished with failures'
}

const when = (date: Date): string => date.toISOString().slice(0, 19).replace('T', ' ') + ' UTC'

export const totalOf = (c: RolloutCounts): number => c.pending + c.running + c.done + c.failed + c.skipped

export function rolloutView (r: RolloutSummary, activeHere: boolean): RolloutView {
  const total = totalOf(r.counts)
  const finished = r.counts.done + r.counts.failed + r.counts.skipped
  // Running as recorded, but nobody holds its lease: its runner died, and Resume takes it over.
  const orphaned = r.status === 'running' && !activeHere && (r.leaseUntil === null || r.leaseUntil.getTime() < Date.now())
  return {
    id: r.id,
    operation: r.operation,
    startedBy: r.startedBy,
    status: r.status,
    statusText: orphaned ? 'running, but its runner stopped' : STATUS_WORDS[r.status],
    haltReason: r.haltReason,
    counts: r.counts,
    total,
    finished,
    percent: total === 0 ? 100 : Math.round(finished * 100 / total),
    started: when(r.createdAt),
    canHalt: r.status === 'running' || r.status === 'waiting',
    canResume: r.status === 'waiting' || r.status === 'halted' || orphaned
  }
}

/** The rollout's own page: its waves and its failed tenants besides. */
export function rolloutDetail (r: Rollout, activeHere: boolean): RolloutView & { waves: Array<{ name: string, counts: RolloutCounts, total: number }>, failed: Rollout['failed'], maxFailures: number | null, migrations: string[] } {
  return {
    ...rolloutView(r, activeHere),
    waves: r.waves.map((w) => ({ name: w.name, counts: w.counts, total: totalOf(w.counts) })),
    failed: r.failed,
    maxFailures: r.maxFailures,
    migrations: r.migrations
  }
}
