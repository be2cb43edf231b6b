import type { FilterQuery, MikroORM } from '@mikro-orm/postgresql'
import type { Tenant, TenantStatus } from '../tenant.js'
import { TENANT_STATUSES } from '../tenant.js'
import { DomainEntity } from '../entities/central/domain.entity.js'
import { TenantEntity, type TenantRecord } from '../entities/central/tenant.entity.js'

/** What `app.tenancy.tenants.list()` takes; every field is optional. */
export interface TenantListQuery {
  /** Case-insensitive text found in the identifier, the name, or one of the domains. */
  search?: string
  status?: TenantStatus
  /** Tenants of this cluster; null for tenants in no cluster. */
  clusterId?: string | null
  /** Tenants not in this cluster (those in no cluster included). */
  notInClusterId?: string
  /** Only these tenants (keys). */
  keys?: readonly string[]
  /** Not these tenants (keys): a picker leaves out the ones attached already. */
  excludeKeys?: readonly string[]
  sort?: 'identifier' | 'name' | 'created' | 'status'
  dir?: 'asc' | 'desc'
  /** A page: at most `limit` tenants after skipping `offset` (default: all). */
  limit?: number
  offset?: number
}

/** A tenant as a list shows it: the row with its cluster and domains. */
export interface TenantListing extends Tenant {
  databaseHost: string | null
  failureReason: string | null
  createdAt: Date
  cluster: { id: string, name: string } | null
  /** The tenant's domains, the primary first. */
  domains: string[]
}

const DOMAIN_BATCH = 5000

const SORT_PROPERTIES = { identifier: 'identifier', name: 'name', created: 'createdAt', status: 'status' } as const

/** `%` `_` and `\` stand for themselves in a search. */
function likePattern (text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => '\\' + c)}%`
}

/**
 * Reads over the central tenants and domains, for admin screens, command
 * lines and apps: a filtered, sorted, paged list, and counts by status.
 */
export class TenantListings {
  constructor (private readonly orm: MikroORM) {}

  /** Tenants matching `query`, sorted (then by identifier) and paged, with how many match in all. */
  async list (query: TenantListQuery = {}): Promise<{ total: number, tenants: TenantListing[] }> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const and: Array<FilterQuery<TenantRecord>> = []
    const search = query.search?.trim() ?? ''
    if (search !== '') {
      const like = likePattern(search.toLowerCase())
      // A subquery, not a list of keys: a broad search over many tenants must not become thousands of parameters.
      const byDomain = em.createQueryBuilder(DomainEntity, 'd').select('d.tenant').where({ domain: { $like: like } }).getKnexQuery()
      and.push({ $or: [{ identifier: { $ilike: like } }, { name: { $ilike: like } }, { key: { $in: byDomain as never } }] })
    }
    if (query.status !== undefined) and.push({ status: query.status })
    if (query.clusterId !== undefined) and.push({ cluster: query.clusterId })
    if (query.notInClusterId !== undefined) and.push({ $or: [{ cluster: null }, { cluster: { $ne: query.notInClusterId } }] })
    if (query.keys !== undefined) and.push({ key: { $in: [...query.keys] } })
    if (query.excludeKeys !== undefined && query.excludeKeys.length > 0) and.push({ key: { $nin: [...query.excludeKeys] } })
    const dir = query.dir === 'desc' ? 'desc' : 'asc'
    const sort = SORT_PROPERTIES[query.sort ?? 'identifier'] ?? 'identifier'
    const [rows, total] = await em.findAndCount(TenantEntity, and.length === 0 ? {} : { $and: and }, {
      populate: ['cluster'],
      orderBy: [{ [sort]: dir }, { identifier: 'asc' }],
      limit: query.limit,
      offset: query.offset
    })
    const domains = new Map<string, string[]>()
    // In batches: an unpaged list of many tenants must stay under PostgreSQL's limit on bound parameters.
    for (let i = 0; i < rows.length; i += DOMAIN_BATCH) {
      const keys = rows.slice(i, i + DOMAIN_BATCH).map((t) => t.key)
      const found = await em.find(DomainEntity, { tenant: { $in: keys } }, { orderBy: [{ isPrimary: 'desc' }, { domain: 'asc' }] })
      for (const d of found) domains.set(d.tenant.key, [...(domains.get(d.tenant.key) ?? []), d.domain])
    }
    return {
      total,
      tenants: rows.map((t) => ({
        key: t.key,
        identifier: t.identifier,
        resourceKey: t.resourceKey ?? null,
        name: t.name,
        status: t.status,
        databaseHost: t.databaseHost ?? null,
        data: t.data,
        failureReason: t.failureReason ?? null,
        createdAt: t.createdAt,
        cluster: t.cluster == null ? null : { id: t.cluster.id, name: t.cluster.name },
        domains: domains.get(t.key) ?? []
      }))
    }
  }

  /** How many tenants there are, in all and by status. */
  async counts (): Promise<{ total: number, byStatus: Record<TenantStatus, number> }> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const byStatus = Object.fromEntries(TENANT_STATUSES.map((s) => [s, 0])) as Record<TenantStatus, number>
    for (const status of TENANT_STATUSES) byStatus[status] = await em.count(TenantEntity, { status })
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0)
    return { total, byStatus }
  }
}
