/**
 * A bounded map that forgets its least recently used entry first, and an
 * entry once its time to live is over. A Map keeps insertion order, so moving
 * an entry to the end on each read is all the bookkeeping; this is the little
 * of lru-cache we used, without its 4 MB in every app's install.
 */
import { misuse } from './misuse.js'

export interface LruOptions<K, V> {
  max: number
  /** Milliseconds an entry lives (0 or absent: until evicted). */
  ttl?: number
  /** Called when an entry leaves by eviction, expiry, delete, overwrite or clear. */
  dispose?: (value: V, key: K) => void
  /** The clock, in milliseconds (default performance.now). */
  now?: () => number
}

interface Slot<V> { value: V, expires: number, touched: number }

export class Lru<K, V> {
  private readonly map = new Map<K, Slot<V>>()
  private readonly options: LruOptions<K, V>
  private readonly now: () => number
  /** Counts sets and moves: an entry has at most `seq - slot.touched` entries after it in the map's order. */
  private seq = 0

  constructor (options: LruOptions<K, V>) {
    if (!(options.max >= 1)) throw misuse.cacheTooSmall()
    this.options = options
    this.now = options.now ?? (() => performance.now())
  }

  get size (): number { return this.map.size }

  get (key: K): V | undefined {
    const slot = this.map.get(key)
    if (slot === undefined) return undefined
    if (slot.expires <= this.now()) {
      this.remove(key, slot)
      return undefined
    }
    // Most recently used goes last. An entry already in the newer half stays
    // where it is (the next evictions cannot reach it), so a hot entry costs
    // a lookup and no Map delete and insert; caches of up to three are exact.
    const after = this.seq - slot.touched
    if (after === 0 || after < this.map.size >> 1) return slot.value
    this.map.delete(key)
    slot.touched = ++this.seq
    this.map.set(key, slot)
    return slot.value
  }

  set (key: K, value: V, options: { ttl?: number } = {}): void {
    const ttl = options.ttl ?? this.options.ttl ?? 0
    const old = this.map.get(key)
    if (old !== undefined) this.remove(key, old)
    this.map.set(key, { value, expires: ttl > 0 ? this.now() + ttl : Infinity, touched: ++this.seq })
    while (this.map.size > this.options.max) {
      const [oldest, slot] = this.map.entries().next().value as [K, Slot<V>]
      this.remove(oldest, slot)
    }
  }

  delete (key: K): boolean {
    const slot = this.map.get(key)
    if (slot === undefined) return false
    this.remove(key, slot)
    return true
  }

  clear (): void {
    const slots = [...this.map]
    this.map.clear()
    if (this.options.dispose !== undefined) for (const [key, slot] of slots) this.options.dispose(slot.value, key)
  }

  /** Live entries, least recently used first. */
  * entries (): IterableIterator<[K, V]> {
    const now = this.now()
    for (const [key, slot] of this.map) if (slot.expires > now) yield [key, slot.value]
  }

  private remove (key: K, slot: Slot<V>): void {
    this.map.delete(key)
    this.options.dispose?.(slot.value, key)
  }
}
