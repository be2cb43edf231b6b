/**
 * The one place tests wait on time. A test waits for a condition (until), bounds
 * a promise that must settle (within), or samples something while other work
 * runs (repeat); it never sleeps a fixed time and hopes the thing happened.
 * Where time itself is the subject, the plugin's `clock` option is moved
 * instead. test/test-habits.test.ts keeps timers out of the other test files.
 */
import { AssertionError } from 'node:assert'
import { inspect } from 'node:util'

export interface UntilOptions<T> {
  /** What is waited for, as the failure will say it: "the rollout finishes". */
  what: string
  /** Give up after this long (default 20 s: only a failing test waits it out). */
  timeoutMs?: number
  /** Read again this often (default 20 ms). */
  everyMs?: number
  /** Whether a value read is the one waited for (default: truthy). */
  is?: (value: T) => boolean
}

const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Reads `condition` until its value is the one waited for (truthy, or `is`) and
 * returns that value; after `timeoutMs` fails naming `what` and the last value
 * read. An error thrown by `condition` fails at once.
 */
export async function until<T> (condition: () => T | Promise<T>, options: UntilOptions<T>): Promise<T> {
  const { what, timeoutMs = 20_000, everyMs = 20, is = Boolean } = options
  const started = performance.now()
  for (;;) {
    const value = await condition()
    if (is(value)) return value
    const waited = performance.now() - started
    if (waited >= timeoutMs) {
      throw new AssertionError({ message: `${what}: not within ${timeoutMs} ms (read ${inspect(value, { depth: 4, breakLength: Infinity })} last)` })
    }
    await pause(Math.min(everyMs, Math.max(0, timeoutMs - waited)))
  }
}

/** `promise`, or a failure naming `what` when it has not settled within `timeoutMs` (a hang made visible, not a wait). */
export async function within<T> (promise: Promise<T>, options: { what: string, timeoutMs: number }): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((resolve, reject) => {
    timer = setTimeout(() => { reject(new AssertionError({ message: `${options.what}: not within ${options.timeoutMs} ms` })) }, options.timeoutMs)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs `step` again and again, `everyMs` apart, until `stop()` (a sampler: the
 * peak of connections, the answers of a second instance while a move runs).
 * `stop()` waits for the step under way; an error a step threw fails it.
 */
export function repeat (step: () => unknown, options: { everyMs: number }): { stop: () => Promise<void> } {
  let running = true
  let wake: (() => void) | undefined
  const loop = (async () => {
    while (running) {
      await step()
      if (!running) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.everyMs)
        wake = () => { clearTimeout(timer); resolve() }
      })
    }
  })()
  // A failing step is reported by stop(), not as an unhandled rejection meanwhile.
  loop.catch(() => {})
  return {
    stop: async () => {
      running = false
      wake?.()
      await loop
    }
  }
}
