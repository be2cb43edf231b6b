import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Lru } from '../server/lru.js'

// The bounded map behind the tenant cache, the request stats and the
// migration gate. Its reads move an entry only when it is in the older half,
// so its order is approximate; what it promises is checked here.

test('a cache of up to three entries forgets exactly the least recently used', () => {
  const evicted: string[] = []
  const lru = new Lru<string, number>({ max: 3, dispose: (_v, k) => { evicted.push(k) } })
  lru.set('a', 1)
  lru.set('b', 2)
  lru.set('c', 3)
  // The middle entry, one after it: read, it becomes the newest.
  assert.equal(lru.get('b'), 2)
  lru.set('d', 4)
  assert.deepEqual(evicted, ['a'])
  // The oldest, read: the newest.
  assert.equal(lru.get('c'), 3)
  lru.set('e', 5)
  assert.deepEqual(evicted, ['a', 'b'])
  assert.deepEqual([...lru.entries()].map(([k]) => k), ['d', 'c', 'e'])
})

test('an evicted entry is one that more than half a full cache of other keys were used after (an exact LRU: all of them)', () => {
  // A fixed sequence of reads and writes over more keys than fit, against a record of each key's last use.
  for (const max of [4, 5, 10, 11, 64]) {
    // mulberry32: a small PRNG with a fixed seed, so a failure repeats.
    let seed = max * 7919
    const random = (n: number): number => {
      seed = (seed + 0x6D2B79F5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return (((t ^ (t >>> 14)) >>> 0) % n)
    }
    let uses = 0
    const lastUse = new Map<number, number>()
    let setting: number | null = null
    let evictions = 0
    const lru = new Lru<number, number>({
      max,
      dispose: (_value, key) => {
        // Only evictions: not the overwritten value of the key being set.
        if (setting === null || key === setting) return
        evictions++
        const since = lastUse.get(key) as number
        const usedAfter = [...lastUse.values()].filter((use) => use > since).length
        // At its last use at most floor(size / 2) - 1 entries came after it; at its eviction max entries do.
        assert.ok(usedAfter >= Math.ceil(max / 2) + 1, `max ${max}: key ${key} evicted when only ${usedAfter} other keys had been used since`)
      }
    })
    for (let i = 0; i < 20_000; i++) {
      const key = random(max * 3)
      if (random(3) === 0) {
        lastUse.set(key, ++uses)
        setting = key
        lru.set(key, i)
        setting = null
      } else if (lru.get(key) !== undefined) {
        lastUse.set(key, ++uses)
      }
      assert.ok(lru.size <= max)
    }
    assert.ok(evictions > 1000, `max ${max}: ${evictions} evictions`)
  }
})

test('a hot entry in a full cache is kept however many other keys come and go', () => {
  const lru = new Lru<string, number>({ max: 100 })
  lru.set('hot', 0)
  for (let i = 0; i < 10_000; i++) {
    lru.set(`k${i}`, i)
    assert.equal(lru.get('hot'), 0, `lost after ${i} other keys`)
  }
})

test('entries expire by their time to live on the given clock; dispose hears eviction, expiry, overwrite, delete and clear', () => {
  let now = 0
  const gone: Array<[string, number]> = []
  const lru = new Lru<string, number>({ max: 2, ttl: 100, now: () => now, dispose: (v, k) => { gone.push([k, v]) } })
  lru.set('a', 1)
  lru.set('b', 2, { ttl: 1000 })
  now = 100
  assert.equal(lru.get('a'), undefined, 'expired at its ttl')
  assert.equal(lru.get('b'), 2)
  lru.set('b', 3)
  lru.set('c', 4)
  lru.set('d', 5)
  assert.equal(lru.delete('b'), false, 'b was evicted by d')
  assert.equal(lru.delete('c'), true)
  lru.set('e', 6)
  lru.clear()
  assert.deepEqual(gone, [['a', 1], ['b', 2], ['b', 3], ['c', 4], ['d', 5], ['e', 6]])
  assert.equal(lru.size, 0)
})

test('a cache smaller than one entry is refused', () => {
  assert.throws(() => new Lru({ max: 0 }), (error: Error & { code?: string }) => typeof error.code === 'string' && error.code.startsWith('FST_TENANCY_'))
})
