import type { Tenant } from '../tenant.js'
import type { TenantTarget } from '../database/tenant-target.js'
import type { MoveOptions } from './tenant-mover.js'
import type { MoveRecord } from './move-store.js'
import { withServer } from '../database/tenant-database.js'
import { misuse } from '../misuse.js'

/** What evens hosts out: database size in bytes, or requests served (this instance's `app.tenancy.stats()`). */
export type RebalanceBy = 'size' | 'load'

export interface PlannedMove {
  key: string
  identifier: string
  from: string
  to: string
  /** The tenant's weight: bytes (size) or requests (load). */
  weight: number
}

export interface RebalancePlan {
  by: RebalanceBy
  /** Each host's weight now and after the planned moves. */
  /** Per host: its tenants now and after the plan, and its weight (bytes or requests) now and after. */
  hosts: Array<{ host: string, tenants: number, tenantsAfter: number, before: number, after: number }>
  moves: PlannedMove[]
}

export interface RebalanceParts {
  strategy: 'database' | 'schema' | 'shared'
  hosts: Record<string, string>
  defaultHost: string
  /** Every tenant (from the central database). */
  select: () => Promise<Tenant[]>
  targetOf: (tenant: Pick<Tenant, 'key' | 'databaseHost'>) => TenantTarget
  /** Requests per tenant key on this instance. */
  load: () => Record<string, { requests: number }>
  move: (tenant: Pick<Tenant, 'key'>, options: MoveOptions) => Promise<MoveRecord>
}

interface Placed { key: string, identifier: string, host: string, weight: number }

/**
 * Proposes moves that even out the hosts: again and again, the one move of
 * a tenant to another host that makes the hosts' totals most even (the
 * largest drop in their sum of squares), while some move still evens them.
 * Each tenant moves at most once.
 */
export function planMoves (placed: Placed[], hosts: string[], by: RebalanceBy): RebalancePlan {
  const total = new Map(hosts.map((h) => [h, 0]))
  for (const p of placed) total.set(p.host, (total.get(p.host) ?? 0) + p.weight)
  const before = new Map(total)
  const where = new Map(placed.map((p) => [p.key, p.host]))
  const moved = new Set<string>()
  const moves: PlannedMove[] = []
  for (let round = 0; round < placed.length; round++) {
    // Moving weight w from a host of total x to one of total y changes the sum of squared totals by 2w(w + y - x): the most negative wins.
    let best: { p: Placed, to: string, gain: number } | null = null
    for (const p of placed) {
      if (moved.has(p.key) || p.weight <= 0) continue
      const x = total.get(where.get(p.key) as string) ?? 0
      for (const to of hosts) {
        const gain = 2 * p.weight * (x - (total.get(to) ?? 0) - p.weight)
        if (gain > 0 && (best === null || gain > best.gain)) best = { p, to, gain }
      }
    }
    if (best === null) break
    const from = where.get(best.p.key) as string
    moves.push({ key: best.p.key, identifier: best.p.identifier, from, to: best.to, weight: best.p.weight })
    moved.add(best.p.key)
    where.set(best.p.key, best.to)
    total.set(from, (total.get(from) ?? 0) - best.p.weight)
    total.set(best.to, (total.get(best.to) ?? 0) + best.p.weight)
  }
  return {
    by,
    hosts: hosts.map((h) => ({
      host: h,
      tenants: placed.filter((p) => p.host === h).length,
      tenantsAfter: [...where.values()].filter((x) => x === h).length,
      before: before.get(h) ?? 0,
      after: total.get(h) ?? 0
    })),
    moves
  }
}

/** `tenants:rebalance`: a plan that evens out database hosts, and running it one move at a time through `app.tenancy.move`. */
export class Rebalancer {
  constructor (private readonly parts: RebalanceParts) {}

  async plan (by: RebalanceBy = 'size'): Promise<RebalancePlan> {
    const { strategy, hosts, defaultHost } = this.parts
    if (strategy === 'shared') throw misuse.nothingToRebalance()
    const names = Object.keys(hosts).sort()
    const load = by === 'load' ? this.parts.load() : {}
    const tenants = (await this.parts.select()).filter((t) => t.status === 'active' || t.status === 'suspended')
    const placed: Placed[] = []
    for (const host of names) {
      const here = tenants.filter((t) => (t.databaseHost ?? defaultHost) === host)
      if (here.length === 0) continue
      const sizes = by === 'size' ? await this.sizes(here) : new Map<string, number>()
      for (const t of here) placed.push({ key: t.key, identifier: t.identifier, host, weight: by === 'size' ? sizes.get(t.key) ?? 0 : load[t.key]?.requests ?? 0 })
    }
    return planMoves(placed, names, by)
  }

  /** Runs a plan's moves one at a time (each online, under the tenant's lock); stops at the first that fails. */
  async apply (plan: RebalancePlan, onMove?: (move: PlannedMove, record: MoveRecord) => void): Promise<MoveRecord[]> {
    const done: MoveRecord[] = []
    for (const m of plan.moves) {
      const record = await this.parts.move({ key: m.key }, { host: m.to })
      done.push(record)
      onMove?.(m, record)
    }
    return done
  }

  /** Each tenant's size on its host (its database's, or its schema's tables with their indexes and TOAST), in one query per host. */
  private async sizes (tenants: Tenant[]): Promise<Map<string, number>> {
    const targets = tenants.map((t) => ({ key: t.key, target: this.parts.targetOf(t) }))
    const first = targets[0]?.target
    if (first === undefined) return new Map()
    const names = targets.map((t) => t.target.name)
    const sql = first.schema === null
      ? 'select datname as name, pg_database_size(datname)::text as size from pg_database where datname = any($1::text[])'
      : `select n.nspname as name, coalesce(sum(pg_total_relation_size(c.oid)), 0)::text as size from pg_namespace n
           left join pg_class c on c.relnamespace = n.oid and c.relkind in ('r', 'm') where n.nspname = any($1::text[]) group by n.nspname`
    const at = first.schema === null ? first.server : first.url
    const rows = await withServer(at, async (c) => (await c.query<{ name: string, size: string }>(sql, [names])).rows)
    const byName = new Map(rows.map((r) => [r.name, Number(r.size)]))
    return new Map(targets.map((t) => [t.key, byName.get(t.target.name) ?? 0]))
  }
}
