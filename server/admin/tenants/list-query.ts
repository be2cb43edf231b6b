import { TENANT_STATUSES, UUID_PATTERN, type TenantStatus } from '../../tenant.js'

/** The tenant list's query string, checked: anything unknown falls back to the default. */
export interface TenantListQuery {
  q: string
  status: TenantStatus | ''
  cluster: string
  sort: 'identifier' | 'name' | 'created' | 'status'
  dir: 'asc' | 'desc'
  page: number
}

export const PAGE_SIZE = 25
const SORTS = ['identifier', 'name', 'created', 'status'] as const

export function readListQuery (raw: unknown): TenantListQuery {
  const q = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  const text = (v: unknown): string => typeof v === 'string' ? v.trim() : ''
  const status = text(q.status)
  const sort = text(q.sort)
  const page = Number.parseInt(text(q.page), 10)
  return {
    q: text(q.q).slice(0, 100),
    status: (TENANT_STATUSES as readonly string[]).includes(status) ? status as TenantStatus : '',
    cluster: UUID_PATTERN.test(text(q.cluster)) || text(q.cluster) === 'none' ? text(q.cluster) : '',
    sort: (SORTS as readonly string[]).includes(sort) ? sort as TenantListQuery['sort'] : 'identifier',
    dir: text(q.dir) === 'desc' ? 'desc' : 'asc',
    page: Number.isInteger(page) && page > 0 && page < 100_000 ? page : 1
  }
}

/** The list's URL with some parameters changed (links keep the others). */
export function listUrl (base: string, query: TenantListQuery, change: Partial<TenantListQuery>): string {
  const merged = { ...query, ...change }
  const params = new URLSearchParams()
  if (merged.q !== '') params.set('q', merged.q)
  if (merged.status !== '') params.set('status', merged.status)
  if (merged.cluster !== '') params.set('cluster', merged.cluster)
  if (merged.sort !== 'identifier') params.set('sort', merged.sort)
  if (merged.dir !== 'asc') params.set('dir', merged.dir)
  if (merged.page !== 1) params.set('page', String(merged.page))
  const s = params.toString()
  return s === '' ? base : `${base}?${s}`
}
