/** Search, sort and paging of the admin's lists, read from the query string and drawn as links (no JavaScript). */

export interface ListParams<S extends string> {
  q: string
  sort: S
  dir: 'asc' | 'desc'
  page: number
}

export interface SortHeader {
  label: string
  href: string
  /** `aria-sort` of the column: only the sorted one has it. */
  ariaSort: 'ascending' | 'descending' | null
  /** ▲ / ▼ on the sorted column. */
  indicator: string
  /** What the link does, for screen readers. */
  hint: string
}

export interface Paging {
  pageNumber: number
  pages: number
  total: number
  prev: string | null
  next: string | null
}

export const LIST_PAGE_SIZE = 25

export function readListParams<S extends string> (raw: unknown, sorts: readonly S[], defaultSort: S): ListParams<S> {
  const q = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  const text = (v: unknown): string => typeof v === 'string' ? v.trim() : ''
  const sort = text(q.sort)
  const page = Number.parseInt(text(q.page), 10)
  return {
    q: text(q.q).slice(0, 100),
    sort: (sorts as readonly string[]).includes(sort) ? sort as S : defaultSort,
    dir: text(q.dir) === 'desc' ? 'desc' : 'asc',
    page: Number.isInteger(page) && page > 0 && page < 100_000 ? page : 1
  }
}

/** The list's URL with some parameters changed; `extra` keeps a list's own filters. */
export function listHref<S extends string> (
  base: string, params: ListParams<S>, change: Partial<ListParams<S>>, defaultSort: S, extra: Record<string, string> = {}
): string {
  const merged = { ...params, ...change }
  const search = new URLSearchParams()
  if (merged.q !== '') search.set('q', merged.q)
  for (const [k, v] of Object.entries(extra)) if (v !== '') search.set(k, v)
  if (merged.sort !== defaultSort) search.set('sort', merged.sort)
  if (merged.dir !== 'asc') search.set('dir', merged.dir)
  if (merged.page !== 1) search.set('page', String(merged.page))
  const s = search.toString()
  return s === '' ? base : `${base}?${s}`
}

/** Column headers that sort: the sorted one shows its direction and links to the other. */
export function sortHeaders<S extends string> (
  base: string, params: ListParams<S>, columns: Array<[S, string]>, defaultSort: S, extra: Record<string, string> = {}
): Record<S, SortHeader> {
  return Object.fromEntries(columns.map(([key, label]) => {
    const active = params.sort === key
    const dir = active && params.dir === 'asc' ? 'desc' : 'asc'
    return [key, {
      label,
      href: listHref(base, params, { sort: key, dir, page: 1 } as Partial<ListParams<S>>, defaultSort, extra),
      ariaSort: active ? (params.dir === 'asc' ? 'ascending' : 'descending') : null,
      indicator: active ? (params.dir === 'asc' ? '▲' : '▼') : '',
      hint: `sort by ${label.toLowerCase()}, ${dir === 'asc' ? 'ascending' : 'descending'}`
    }]
  })) as Record<S, SortHeader>
}

export function paging<S extends string> (
  base: string, params: ListParams<S>, total: number, defaultSort: S, extra: Record<string, string> = {}, pageSize = LIST_PAGE_SIZE
): Paging & { offset: number, limit: number } {
  const pages = Math.max(1, Math.ceil(total / pageSize))
  const page = Math.min(params.page, pages)
  return {
    pageNumber: page,
    pages,
    total,
    offset: (page - 1) * pageSize,
    limit: pageSize,
    prev: page > 1 ? listHref(base, params, { page: page - 1 } as Partial<ListParams<S>>, defaultSort, extra) : null,
    next: page < pages ? listHref(base, params, { page: page + 1 } as Partial<ListParams<S>>, defaultSort, extra) : null
  }
}

/** Filters, sorts and pages rows already in memory (short lists: clusters, admins, roles). */
export function pageOf<T, S extends string> (
  rows: T[], params: ListParams<S>, text: (row: T) => string, key: (row: T, sort: S) => string | number,
  base: string, defaultSort: S, extra: Record<string, string> = {}
): { rows: T[], paging: Paging } {
  const needle = params.q.toLowerCase()
  const matching = needle === '' ? rows : rows.filter((r) => text(r).toLowerCase().includes(needle))
  const sorted = [...matching].sort((a, b) => {
    const x = key(a, params.sort)
    const y = key(b, params.sort)
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))
    return params.dir === 'asc' ? c : -c
  })
  const p = paging(base, params, sorted.length, defaultSort, extra)
  return { rows: sorted.slice(p.offset, p.offset + p.limit), paging: p }
}
