import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

/**
 * Habits of the tests themselves (issue #20): no test waits a fixed time for
 * something to happen, and none shuffles with an unseeded Math.random().
 * A test waits for the condition (helpers/poll.ts: until, within, repeat),
 * moves the plugin's `clock` option where time is the subject, or holds work
 * at a latch it opens itself; randomness comes from helpers/random.ts, seeded.
 */

const TEST_DIR = resolve(import.meta.dirname)
const SELF = 'test-habits.test.ts'

/** What waits on time: a timer, the promise timers, a sleep or delay function. */
const WAITS = /\bset(?:Timeout|Interval)\s*\(|timers\/promises|\b(?:sleep|delay)\s*\(/g
const RANDOM = /\bMath\.random\s*\(/g

/**
 * The files allowed a timer, each with how many and why. The count is exact:
 * one more is a new wait to justify (or to replace), one fewer a stale entry.
 */
const TIMERS: Record<string, { count: number, why: string }> = {
  'helpers/poll.ts': { count: 3, why: 'the one place tests wait on time: until() polls a condition, within() bounds a promise, repeat() paces a sampler' },
  'helpers/moves.ts': { count: 1, why: 'the writer sends `perSecond` requests a second through a move: its pace is the load the move is tested under, not a wait for anything' },
  'tenant-isolation.test.ts': { count: 2, why: 'the timer is the subject (a timer set in a tenant request keeps that tenant); it sets itself again until another tenant\'s request has run, a condition, not a time' },
  'connection-faults.test.ts': { count: 1, why: 'a hold keeps the one connection for 1 s of real time to spend the request\'s acquireTimeoutMs budget, which the pool counts on real timers; when the hold has the connection is a latch' }
}

/** The files allowed Math.random(): none but the helper, which does not need it either. */
const RANDOMS = new Set(['helpers/random.ts'])

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sources(path)
    return /\.(?:[cm]?ts|[cm]?js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

const files = sources(TEST_DIR).map((path) => ({ name: relative(TEST_DIR, path).split('\\').join('/'), text: readFileSync(path, 'utf8') })).filter((f) => f.name !== SELF)

/** Each match as `file:line: text`. */
function matches (pattern: RegExp): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const { name, text } of files) {
    for (const m of text.matchAll(pattern)) {
      const line = text.slice(0, m.index).split('\n').length
      const list = found.get(name) ?? []
      list.push(`${name}:${line}: ${text.split('\n')[line - 1]?.trim() ?? ''}`)
      found.set(name, list)
    }
  }
  return found
}

test('the guard reads the test sources', () => {
  assert.ok(files.length > 50, `found ${files.length} files under test/`)
  assert.ok(files.some((f) => f.name === 'helpers/poll.ts'))
})

test('no test file waits on a timer except the files allowed one, each with its reason and count', () => {
  const found = matches(WAITS)
  const unexpected = [...found].filter(([name]) => TIMERS[name] === undefined).flatMap(([, lines]) => lines)
  assert.deepEqual(unexpected, [], 'wait for the condition with until() from helpers/poll.ts, move the clock option, or hold the work at a latch')
  for (const [name, allowed] of Object.entries(TIMERS)) {
    const lines = found.get(name) ?? []
    assert.equal(lines.length, allowed.count, `${name} is allowed ${allowed.count} timer(s) (${allowed.why}); it has ${lines.length}:\n${lines.join('\n')}`)
  }
})

test('nothing under test/ uses Math.random(): randomness is seeded (helpers/random.ts)', () => {
  const found = [...matches(RANDOM)].filter(([name]) => !RANDOMS.has(name)).flatMap(([, lines]) => lines)
  assert.deepEqual(found, [], 'take a generator from randomFor(t) or seededRandom() in helpers/random.ts, so a failure can be run again')
})

test('the guard catches what it is meant to', () => {
  const caught = (text: string, pattern: RegExp): boolean => [...text.matchAll(pattern)].length > 0
  for (const wait of [
    'await new Promise((resolve) => setTimeout(resolve, 350))',
    "import { setTimeout as sleep } from 'node:timers/promises'",
    'await sleep(50)',
    'await delay (10)',
    'setInterval(tick, 5)'
  ]) assert.ok(caught(wait, WAITS), wait)
  for (const fine of ['select pg_sleep(0.4)', 'retryDelay: 1', "await until(() => done, { what: 'it' })"]) assert.ok(!caught(fine, WAITS), fine)
  assert.ok(caught('[...a].sort(() => Math.random() - 0.5)', RANDOM))
})
