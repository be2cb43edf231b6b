import { MOVE_STEPS, type MoveRecord, type MoveStep } from '../../moves/move-store.js'

/** What each recorded step means, in the words the status page uses. */
const STEP_WORDS: Record<MoveStep, string> = {
  started: 'Checked the target host',
  target: 'Made the target database at the tenant\'s schema version',
  published: 'Published the tenant\'s tables on the source',
  subscribed: 'Subscribed the target to them',
  copied: 'Copied the rows; the target follows the source',
  held: 'Holding the tenant\'s requests',
  fenced: 'Stopped writes on the source',
  'caught-up': 'The target has the last changes',
  sequences: 'Carried the sequences over',
  switched: 'Switched the tenant to the target host',
  done: 'Cleaned up replication'
}

const OFFLINE_ORDER: readonly MoveStep[] = ['started', 'target', 'held', 'fenced', 'copied', 'sequences', 'switched', 'done']

export interface MoveStatusView {
  fromHost: string
  toHost: string
  mode: string
  state: 'running' | 'done' | 'aborted'
  /** Running here, or recorded as running with no process of this instance driving it (another instance, or a crash). */
  active: boolean
  error: string | null
  steps: Array<{ label: string, done: boolean, current: boolean }>
  doneCount: number
  started: string
  switched: string | null
  keepUntil: string | null
}

const when = (date: Date | null): string | null => date === null ? null : date.toISOString().slice(0, 19).replace('T', ' ') + ' UTC'

/** A move record as the status page shows it: each step done or to come, the one under way marked. */
export function moveStatusView (move: MoveRecord, activeHere: boolean): MoveStatusView {
  const order = move.mode === 'offline' ? OFFLINE_ORDER : MOVE_STEPS
  const reached = order.indexOf(move.step)
  // A move this process still drives is under way until its outcome is in the audit log, so the page never shows an ending the log does not have yet.
  const state = activeHere && move.state !== 'running' ? 'running' : move.state
  const finished = state === 'done'
  return {
    fromHost: move.fromHost,
    toHost: move.toHost,
    mode: move.mode,
    state,
    active: activeHere,
    error: move.error,
    steps: order.map((step, i) => ({ label: STEP_WORDS[step], done: finished || i <= reached, current: state === 'running' && i === reached + 1 })),
    doneCount: finished ? order.length : reached + 1,
    started: when(move.startedAt) as string,
    switched: when(move.switchedAt),
    keepUntil: when(move.keepUntil)
  }
}
