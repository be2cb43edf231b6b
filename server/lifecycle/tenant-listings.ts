import type { MikroORM } from '@mikro-orm/postgresql'
import type { Tenant, TenantStatus } from '../tenant.js'
import { TENANT_STATUSES } from '../tenant.js'
import { centralTables, type CentralTables } from '../database/central-schema.js'
import { centralSql } from '../database/central-sql.js'

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

/** Sort keys to columns: a fixed list, so no query value reaches SQL as a name. */
const SORT_COLUMNS = { identifier: 'identifier', name: 'name', created: 'created_at', status: 'status' } as const

/** `%` `_` and `\` stand for themselves in a search. */
function likePattern (text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => '\\' + c)}%`
}

/**
 * Reads over the central tenants and domains, for admin screens, command
 * lines and apps: a filtered, sorted, paged list, and counts by status. Each
 * is one statement: a page of a list of 100,000 tenants, with the count of
 * all that match, their clusters and their domains, is one round trip.
 */
export class TenantListings {
  constructor (private readonly orm: MikroORM) {}

  /** Our central tables, schema-qualified, as raw SQL names them. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private async sql (text: string, params: unknown[]): Promise<Array<Record<string, any>>> {
    return await centralSql(this.orm)(text, params)
  }

  /** Tenants matching `query`, sorted (then by identifier) and paged, with how many match in all. */
  async list (query: TenantListQuery = {}): Promise<{ total: number, tenants: TenantListing[] }> {
    const where: string[] = []
    const params: unknown[] = []
    const search = query.search?.trim() ?? ''
    if (search !== '') {
      const like = likePattern(search.toLowerCase())
      // A subquery, not a list of keys: a broad search over many tenants must not become thousands of parameters.
      // Identifiers and domains are lowercase by their rules, so a plain LIKE finds them (cheaper than ILIKE).
      where.push(`(t.identifier like ? or lower(t.name) like ? or t.key in (select d.tenant_key from ${this.t.domains} d where d.domain like ?))`)
      params.push(like, like, like)
    }
    if (query.status !== undefined) { where.push('t.status = ?'); params.push(query.status) }
    if (query.clusterId === null) where.push('t.tenant_cluster_id is null')
    else if (query.clusterId !== undefined) { where.push('t.tenant_cluster_id = ?'); params.push(query.clusterId) }
    if (query.notInClusterId !== undefined) { where.push('(t.tenant_cluster_id is null or t.tenant_cluster_id <> ?)'); params.push(query.notInClusterId) }
    if (query.keys !== undefined) { where.push('t.key = any(?::uuid[])'); params.push(`{${query.keys.join(',')}}`) }
    if (query.excludeKeys !== undefined && query.excludeKeys.length > 0) { where.push('t.key <> all(?::uuid[])'); params.push(`{${query.excludeKeys.join(',')}}`) }
    const clause = where.length === 0 ? '' : `where ${where.join(' and ')}`
    const dir = query.dir === 'desc' ? 'desc' : 'asc'
    const sort = SORT_COLUMNS[query.sort ?? 'identifier'] ?? 'identifier'
    const order = (alias: string): string => `${alias}.${sort} ${dir}, ${alias}.identifier asc`
    const limit = query.limit === undefined ? '' : ` limit ${Math.max(0, Math.floor(query.limit))}`
    const offset = query.offset === undefined || query.offset <= 0 ? '' : ` offset ${Math.floor(query.offset)}`
    // The page (an index walk when sorted by identifier), with its clusters and domains: only the page's rows are looked up.
    const rows = await this.sql(`with page as (
        select t.key, t.identifier, t.resource_key, t.name, t.status, t.database_host, t.data, t.failure_reason, t.created_at, t.tenant_cluster_id, t.held_at, t.isolation
          from ${this.t.tenants} t ${clause} order by ${order('t')}${limit}${offset}
      )
      select p.*, c.name as cluster_name,
             coalesce((select array_agg(d.domain order by d.is_primary desc, d.domain) from ${this.t.domains} d where d.tenant_key = p.key), '{}') as domains
        from page p left join ${this.t.tenant_clusters} c on c.id = p.tenant_cluster_id
       order by ${order('p')}`, params)
    // A page that is not full says how many match; a full one (or one past the end) asks.
    const skipped = query.offset === undefined ? 0 : Math.max(0, Math.floor(query.offset))
    const full = query.limit !== undefined && rows.length >= query.limit
    const total = rows.length > 0 && !full
      ? skipped + rows.length
      : rows.length === 0 && skipped === 0 ? 0 : Number((await this.sql(`select count(*)::int as n from ${this.t.tenants} t ${clause}`, params))[0]?.n ?? 0)
    return {
      total,
      tenants: rows.map((r) => ({
        key: String(r.key),
        identifier: String(r.identifier),
        resourceKey: r.resource_key ?? null,
        name: String(r.name),
        status: r.status as TenantStatus,
        databaseHost: r.database_host ?? null,
        isolation: r.isolation === 'database' || r.isolation === 'schema' ? r.isolation as 'database' | 'schema' : null,
        data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) ?? {},
        failureReason: r.failure_reason ?? null,
        heldAt: r.held_at == null ? null : new Date(r.held_at),
        createdAt: new Date(r.created_at),
        cluster: r.tenant_cluster_id == null ? null : { id: String(r.tenant_cluster_id), name: String(r.cluster_name) },
        domains: (r.domains as string[] | null) ?? []
      }))
    }
  }

  /** How many tenants there are, in all and by status. */
  async counts (): Promise<{ total: number, byStatus: Record<TenantStatus, number> }> {
    const byStatus = Object.fromEntries(TENANT_STATUSES.map((s) => [s, 0])) as Record<TenantStatus, number>
    for (const r of await this.sql(`select status, count(*)::int as n from ${this.t.tenants} group by status`, [])) {
      if ((TENANT_STATUSES as readonly string[]).includes(String(r.status))) byStatus[r.status as TenantStatus] = Number(r.n)
    }
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0)
    return { total, byStatus }
  }
}
