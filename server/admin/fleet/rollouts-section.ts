import type { RolloutsApi } from '../../rollouts/rollout-types.js'
import type { Paging } from '../ui/list-view.js'
import { rolloutView, totalOf, type RolloutView } from './rollout-view.js'

/** Rollouts on one page of the Fleet page: few, as each is read with its waves. */
export const ROLLOUTS_PER_PAGE = 5

export interface RolloutsSection {
  rows: Array<RolloutView & { waves: Array<{ name: string, counts: RolloutView['counts'], total: number }> }>
  paging: Paging
}

/**
 * The Fleet page's list of rollouts, newest first, paged by `rollouts` in
 * the query (the tenants' own `page` is kept in the links).
 */
export async function rolloutsSection (rollouts: RolloutsApi, base: string, query: unknown): Promise<RolloutsSection> {
  const q = (typeof query === 'object' && query !== null ? query : {}) as Record<string, unknown>
  const asked = Number.parseInt(typeof q.rollouts === 'string' ? q.rollouts : '', 10)
  let page = Number.isInteger(asked) && asked > 0 && asked < 100_000 ? asked : 1
  let { rollouts: list, total } = await rollouts.list({ page, perPage: ROLLOUTS_PER_PAGE })
  const pages = Math.max(1, Math.ceil(total / ROLLOUTS_PER_PAGE))
  // A page past the end (a hand-made link) shows the last one.
  if (page > pages) { page = pages; ({ rollouts: list, total } = await rollouts.list({ page, perPage: ROLLOUTS_PER_PAGE })) }
  const tenantsPage = typeof q.page === 'string' && /^[0-9]{1,5}$/.test(q.page) && q.page !== '1' ? q.page : null
  const href = (n: number): string => {
    const search = new URLSearchParams()
    if (tenantsPage !== null) search.set('page', tenantsPage)
    if (n !== 1) search.set('rollouts', String(n))
    const s = search.toString()
    return `${s === '' ? base : `${base}?${s}`}#rollouts`
  }
  const rows = await Promise.all(list.map(async (summary) => {
    const full = await rollouts.get(summary.id)
    return { ...rolloutView(full, false), waves: full.waves.map((w) => ({ name: w.name, counts: w.counts, total: totalOf(w.counts) })) }
  }))
  return { rows, paging: { pageNumber: page, pages, total, prev: page > 1 ? href(page - 1) : null, next: page < pages ? href(page + 1) : null } }
}
