import { LRUCache } from 'lru-cache'
import type { Tenant } from '../tenant.js'
import type { TenantProvider } from './provider.js'

export interface TenantCacheOptions {
  /** Most entries kept (default 10,000). */
  max: number
  /** How long a found tenant is kept, in ms (default 60,000). */
  ttlMs: number
  /** How long a miss is kept, in ms, so unknown names do not hit the database every time (default 2,000). */
  missTtlMs: number
}

/** Stands for "looked up, not found" in the cache (the LRU cannot hold null). */
const MISS = Symbol('miss')
type Entry = Tenant | typeof MISS
type Lookup = 'byIdentifier' | 'byKey' | 'byResourceKey' | 'byDomain'

/**
 * A provider in front of another: an LRU with TTL. A hit makes no query;
 * concurrent misses for one name share one query; misses are kept briefly.
 * `invalidate()` forgets everything at once, and lookups that were under way
 * then do not write their (possibly stale) answers back.
 */
export class CachedTenantProvider implements TenantProvider {
  readonly name: string
  readonly byDomain?: (domain: string) => Promise<Tenant | null>
  private readonly inner: TenantProvider
  private readonly options: TenantCacheOptions
  private readonly lru: LRUCache<string, Entry>
  private readonly inflight = new Map<string, Promise<Tenant | null>>()
  private generation = 0

  constructor (inner: TenantProvider, options: TenantCacheOptions) {
    this.inner = inner
    this.name = inner.name
    this.options = options
    this.lru = new LRUCache<string, Entry>({ max: options.max, ttl: options.ttlMs, ttlAutopurge: false })
    if (inner.byDomain !== undefined) this.byDomain = async (domain) => await this.get('byDomain', domain)
  }

  async byIdentifier (identifier: string): Promise<Tenant | null> { return await this.get('byIdentifier', identifier) }
  async byKey (key: string): Promise<Tenant | null> { return await this.get('byKey', key) }
  async byResourceKey (resourceKey: string): Promise<Tenant | null> { return await this.get('byResourceKey', resourceKey) }

  /** The cached answer, or undefined when the cache must ask the provider (a synchronous fast path). */
  peek (lookup: Lookup, value: string): Tenant | null | undefined {
    const hit = this.lru.get(lookup + '\u0000' + value)
    return hit === undefined ? undefined : hit === MISS ? null : hit
  }

  invalidate (): void {
    this.generation++
    this.lru.clear()
    this.inflight.clear()
  }

  get size (): number { return this.lru.size }

  async get (lookup: Lookup, value: string): Promise<Tenant | null> {
    const id = lookup + '\u0000' + value
    const hit = this.lru.get(id)
    if (hit !== undefined) return hit === MISS ? null : hit
    const pending = this.inflight.get(id)
    if (pending !== undefined) return await pending
    const generation = this.generation
    const load = this.load(lookup, value, id, generation)
    this.inflight.set(id, load)
    load.then(() => this.settle(id, load), () => this.settle(id, load))
    return await load
  }

  private settle (id: string, load: Promise<Tenant | null>): void {
    if (this.inflight.get(id) === load) this.inflight.delete(id)
  }

  private async load (lookup: Lookup, value: string, id: string, generation: number): Promise<Tenant | null> {
    const fn = this.inner[lookup]
    const tenant = fn === undefined ? null : await fn.call(this.inner, value)
    if (generation === this.generation) {
      this.lru.set(id, tenant ?? MISS, { ttl: tenant === null ? this.options.missTtlMs : this.options.ttlMs })
    }
    return tenant
  }
}
