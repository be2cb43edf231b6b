/**
 * A seeded random number generator (mulberry32): tests that shuffle or jitter
 * do it the same way on every run, so a failure can be run again;
 * TEST_SEED picks another order.
 */
export function seededRandom (seed = Number(process.env.TEST_SEED ?? 20261206)): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
