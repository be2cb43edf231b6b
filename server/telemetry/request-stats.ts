import { Lru } from '../lru.js'
import type { Tenant } from '../tenant.js'

/** Upper bounds (ms) of the latency buckets; percentiles are read from them. */
const BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, Infinity]

/** One tenant's requests since the instance started (or since it was last seen among the busiest `max`). */
export interface TenantRequestStats {
  key: string
  identifier: string
  requests: number
  /** Responses with a 5xx status. */
  errors: number
  latency: {
    meanMs: number
    maxMs: number
    /** Upper bound of the bucket holding the median, the 95th and the 99th percentile. */
    p50Ms: number
    p95Ms: number
    p99Ms: number
  }
}

interface Counter {
  identifier: string
  requests: number
  errors: number
  totalMs: number
  maxMs: number
  buckets: number[]
}

/**
 * Per-tenant request counts and latency on this instance, kept in memory for
 * at most `max` tenants (the least recently seen are dropped first), so a
 * fleet of 100,000 tenants cannot grow it without bound.
 */
export class RequestStats {
  private readonly counters: Lru<string, Counter>

  constructor (max = 10_000) {
    this.counters = new Lru({ max })
  }

  record (tenant: Tenant, elapsedMs: number, statusCode: number): void {
    let c = this.counters.get(tenant.key)
    if (c === undefined) {
      c = { identifier: tenant.identifier, requests: 0, errors: 0, totalMs: 0, maxMs: 0, buckets: new Array<number>(BUCKETS.length).fill(0) }
      this.counters.set(tenant.key, c)
    }
    c.identifier = tenant.identifier
    c.requests++
    if (statusCode >= 500) c.errors++
    c.totalMs += elapsedMs
    if (elapsedMs > c.maxMs) c.maxMs = elapsedMs
    let i = 0
    while (elapsedMs > (BUCKETS[i] as number)) i++
    c.buckets[i] = (c.buckets[i] as number) + 1
  }

  /** A snapshot by tenant key. */
  snapshot (): Record<string, TenantRequestStats> {
    const out: Record<string, TenantRequestStats> = {}
    for (const [key, c] of this.counters.entries()) {
      out[key] = {
        key,
        identifier: c.identifier,
        requests: c.requests,
        errors: c.errors,
        latency: {
          meanMs: round(c.totalMs / c.requests),
          maxMs: round(c.maxMs),
          p50Ms: percentile(c, 0.5),
          p95Ms: percentile(c, 0.95),
          p99Ms: percentile(c, 0.99)
        }
      }
    }
    return out
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000

function percentile (c: Counter, q: number): number {
  const wanted = Math.ceil(c.requests * q)
  let seen = 0
  for (let i = 0; i < BUCKETS.length; i++) {
    seen += c.buckets[i] as number
    if (seen >= wanted) return Math.min(BUCKETS[i] as number, round(c.maxMs))
  }
  return round(c.maxMs)
}
