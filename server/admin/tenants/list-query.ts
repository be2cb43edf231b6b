import { TENANT_STATUSES, UUID_PATTERN, type TenantStatus } from '../../tenant.js'
import { listHref, readListParams, type ListParams } from '../ui/list-view.js'

type TenantSort = 'identifier' | 'name' | 'created' | 'status'

/** The tenant list's query string, checked: anything unknown falls back to the default. */
export interface TenantListQuery extends ListParams<TenantSort> {
  status: TenantStatus | ''
  cluster: string
}

const SORTS = ['identifier', 'name', 'created', 'status'] as const

/** The shared list parameters (search, sort, page) and the tenant list's own filters. */
export function readListQuery (raw: unknown): TenantListQuery {
  const q = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  const text = (v: unknown): string => typeof v === 'string' ? v.trim() : ''
  const status = text(q.status)
  const cluster = text(q.cluster)
  return {
    ...readListParams(raw, SORTS, 'identifier'),
    status: (TENANT_STATUSES as readonly string[]).includes(status) ? status as TenantStatus : '',
    cluster: UUID_PATTERN.test(cluster) || cluster === 'none' ? cluster : ''
  }
}

/** The filters links keep, besides search, sort and page. */
export function listFilters (query: TenantListQuery): Record<string, string> {
  return { status: query.status, cluster: query.cluster }
}

/** The list's URL with some parameters changed (links keep the others). */
export function listUrl (base: string, query: TenantListQuery, change: Partial<TenantListQuery>): string {
  return listHref(base, query, change, 'identifier', listFilters(query))
}
