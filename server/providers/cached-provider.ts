import { Lru } from '../lru.js'
import type { Tenant } from '../tenant.js'
import type { TenantProvider } from './provider.js'
import type { TenantChange } from './invalidation.js'

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
 * `forget(change)` forgets what one change touched (every entry holding the
 * tenant, and cached misses for its new names); `invalidate()` forgets
 * everything. Either way, lookups that were under way then do not write
 * their (possibly stale) answers back.
 */
export class CachedTenantProvider implements TenantProvider {
  readonly name: string
  readonly byDomain?: (domain: string) => Promise<Tenant | null>
  private readonly inner: TenantProvider
  private readonly options: TenantCacheOptions
  private readonly lru: Lru<string, Entry>
  private readonly inflight = new Map<string, Promise<Tenant | null>>()
  /** Cache ids by the key of the tenant they hold, so a change to one tenant finds all its entries (by identifier, domain, key, resource key). */
  private readonly byTenant = new Map<string, Set<string>>()
  private generation = 0
  /** While true (the change listener is down), nothing is cached: a change could not be heard. */
  private bypass = false

  /** `now`: the clock entries expire by (the plugin's `clock` option; default performance.now). */
  constructor (inner: TenantProvider, options: TenantCacheOptions, now?: () => number) {
    this.inner = inner
    this.name = inner.name
    this.options = options
    this.lru = new Lru<string, Entry>({
      max: options.max,
      ttl: options.ttlMs,
      now,
      dispose: (entry, id) => { if (entry !== MISS) this.unindex(entry.key, id) }
    })
    if (inner.byDomain !== undefined) this.byDomain = async (domain) => await this.get('byDomain', domain)
  }

  async byIdentifier (identifier: string): Promise<Tenant | null> { return await this.get('byIdentifier', identifier) }
  async byKey (key: string): Promise<Tenant | null> { return await this.get('byKey', key) }
  async byResourceKey (resourceKey: string): Promise<Tenant | null> { return await this.get('byResourceKey', resourceKey) }

  /** The cached answer, or undefined when the cache must ask the provider (a synchronous fast path). */
  peek (lookup: Lookup, value: string): Tenant | null | undefined {
    if (this.bypass) return undefined
    const hit = this.lru.get(lookup + '\u0000' + value)
    return hit === undefined ? undefined : hit === MISS ? null : hit
  }

  invalidate (): void {
    this.generation++
    this.lru.clear()
    this.byTenant.clear()
    this.inflight.clear()
  }

  /** Forgets the entries one change touched: everything holding its tenant(s), and the (missed) names it names, old and new. */
  forget (change: TenantChange): void {
    // Lookups under way may carry the old answer: they must not write it back.
    if (this.inflight.size > 0) {
      this.generation++
      this.inflight.clear()
    }
    for (const key of change.keys) {
      const ids = this.byTenant.get(key)
      if (ids !== undefined) for (const id of [...ids]) this.lru.delete(id)
      this.byTenant.delete(key)
      this.lru.delete('byKey\u0000' + key)
    }
    for (const identifier of change.identifiers) this.lru.delete('byIdentifier\u0000' + identifier)
    for (const resourceKey of change.resourceKeys) this.lru.delete('byResourceKey\u0000' + resourceKey)
    for (const domain of change.domains) this.lru.delete('byDomain\u0000' + domain)
  }

  /** Stops caching (and forgets everything) while changes cannot be heard; starts again, from empty, when they can. */
  setListening (listening: boolean): void {
    this.bypass = !listening
    this.invalidate()
  }

  private unindex (key: string, id: string): void {
    const ids = this.byTenant.get(key)
    if (ids === undefined) return
    ids.delete(id)
    if (ids.size === 0) this.byTenant.delete(key)
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
    if (generation === this.generation && !this.bypass) {
      this.lru.set(id, tenant ?? MISS, { ttl: tenant === null ? this.options.missTtlMs : this.options.ttlMs })
      if (tenant !== null) {
        let ids = this.byTenant.get(tenant.key)
        if (ids === undefined) this.byTenant.set(tenant.key, ids = new Set())
        ids.add(id)
      }
    }
    return tenant
  }
}
