/**
 * Seeded randomness (mulberry32): tests that shuffle, pick or mix do it the
 * same way on every run, so a failure can be run again. TEST_SEED picks
 * another order; a failing test that took its generator from `randomFor`
 * prints the seed it ran with. Nothing under test/ calls Math.random
 * (test/test-habits.test.ts).
 */

const DEFAULT_SEED = 20261206

/** The seed to use: TEST_SEED when set, else `fallback`. */
export function testSeed (fallback = DEFAULT_SEED): number {
  const given = process.env.TEST_SEED
  if (given === undefined || given === '') return fallback
  const seed = Number(given)
  if (!Number.isInteger(seed)) throw new Error(`TEST_SEED must be a whole number, not "${given}"`)
  return seed
}

/** A generator of numbers in [0, 1), the same sequence for the same seed. */
export function seededRandom (seed = testSeed()): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What randomFor needs of a node:test TestContext (`passed` is read at run time: Node 20's types do not declare it yet). */
interface SeededTest {
  name: string
  after: (fn: () => void) => void
}

/** The seed for test `t` (TEST_SEED, else `fallback`); when `t` fails, the seed is printed, to run it the same way again. */
export function seedFor (t: SeededTest, fallback = DEFAULT_SEED): number {
  const seed = testSeed(fallback)
  t.after(() => {
    if ((t as { passed?: boolean }).passed !== true) console.error(`# "${t.name}" ran with seed ${seed}: TEST_SEED=${seed} runs it the same way again`)
  })
  return seed
}

/** A generator for test `t`, seeded by seedFor (printed when `t` fails). */
export function randomFor (t: SeededTest, fallback = DEFAULT_SEED): () => number {
  return seededRandom(seedFor(t, fallback))
}

/** A shuffled copy of `items` (Fisher–Yates, by `random`). */
export function shuffle<T> (items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const swap = out[i] as T
    out[i] = out[j] as T
    out[j] = swap
  }
  return out
}
