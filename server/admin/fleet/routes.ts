import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { LIST_PAGE_SIZE, paging, readListParams } from '../ui/list-view.js'
import type { TenantListing } from '../../lifecycle/tenant-listings.js'
import type { MigrationState } from '../../lifecycle/migration-states.js'
import { mapLimit } from '../../support/map-limit.js'
import { rolloutsSection } from './rollouts-section.js'

const ADMIN = { admin: 'manage_tenants' as const }

export interface FleetRow { key: string, identifier: string, state: 'up-to-date' | 'pending' | 'failed' | 'unknown', detail: string }

const when = (date: Date): string => date.toISOString().replace('T', ' ').slice(0, 16) + ' UTC'

/** A tenant's row on the fleet page, from its recorded migration state (no connection to its database). */
function rowOf (t: TenantListing, state: MigrationState | undefined, failedInRun: Map<string, string>): FleetRow {
  const base = { key: t.key, identifier: t.identifier }
  if (t.status === 'failed') return { ...base, state: 'failed', detail: `Provisioning failed: ${t.failureReason ?? 'unknown reason'}` }
  if (t.status === 'provisioning') return { ...base, state: 'pending', detail: 'Provisioning its database.' }
  if (state === undefined) return { ...base, state: 'unknown', detail: 'Not checked yet: "Check these tenants" reads their databases.' }
  const runError = failedInRun.get(t.key)
  if (runError !== undefined && (state.pending.length > 0 || state.error !== null)) return { ...base, state: 'failed', detail: `Migration failed: ${runError}` }
  if (state.error !== null) return { ...base, state: 'failed', detail: `The database could not be read: ${state.error} (seen ${when(state.checkedAt)}).` }
  // Run by the tenant but not among this deploy's tenant migrations (a newer deploy's, or removed ones).
  const unknown = state.unknown.length === 0 ? '' : ` Unknown to this deploy: ${state.unknown.join(', ')}.`
  return state.pending.length === 0
    ? { ...base, state: 'up-to-date', detail: `${state.executed.length - state.unknown.length} migration(s) ran (seen ${when(state.checkedAt)}).${unknown}` }
    : { ...base, state: 'pending', detail: `Pending: ${state.pending.join(', ')} (seen ${when(state.checkedAt)}).${unknown}` }
}

/**
 * The fleet page: every tenant's migration state as last recorded by the
 * core (a migrate, provisioning or a check), so a page of tenants costs two
 * central queries and no tenant connection, with the rollouts above it
 * ("Migrate all" starts one: rollout-routes.ts); "Check these tenants" reads
 * one page of tenant databases on request.
 */
export function fleetRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/fleet`

  const pageOfTenants = async (query: unknown): Promise<{ tenants: TenantListing[], p: ReturnType<typeof paging> }> => {
    const params = readListParams(query, ['identifier'] as const, 'identifier')
    const list = async (n: number): Promise<Awaited<ReturnType<typeof tenancy.tenants.list>>> =>
      await tenancy.tenants.list({ sort: 'identifier', limit: LIST_PAGE_SIZE, offset: (n - 1) * LIST_PAGE_SIZE })
    let { total, tenants } = await list(params.page)
    const p = paging(base, params, total, 'identifier')
    // A page past the end (a hand-made link) shows the last one.
    if (p.pageNumber < params.page && total > 0) ({ total, tenants } = await list(p.pageNumber))
    return { tenants, p }
  }

  app.get('/fleet', { config: ADMIN }, async (request, reply) => {
    const { tenants, p } = await pageOfTenants(request.query)
    // The newest rollout's failures say why a tenant's migration failed.
    const newest = (await tenancy.rollouts.list({ page: 1, perPage: 1 })).rollouts[0]
    const failed = newest === undefined || newest.counts.failed === 0 ? [] : (await tenancy.rollouts.get(newest.id)).failed
    const failedInRun = new Map(failed.map((f) => [f.key, f.error]))
    const states = await tenancy.migrationStates(tenants.map((t) => t.key))
    const rows = tenants.map((t) => rowOf(t, states.get(t.key), failedInRun))
    const rolloutList = await rolloutsSection(tenancy.rollouts, base, request.query)
    const migrating = rolloutList.rows.some((r) => r.status === 'running')
    return await renderPage(ctx, request, reply, 'fleet/index', 'Fleet', {
      rows,
      rollouts: rolloutList,
      paging: p,
      unchecked: rows.some((r) => r.state === 'unknown'),
      migrating,
      // While a rollout runs, the page looks again every 2 s (admin.js redraws it in place; without JavaScript, a meta refresh).
      refresh: migrating ? 2 : false,
      refreshMain: true
    })
  })

  // Reads the databases of one page of tenants (the ones never checked, or all of them), recording what it finds.
  app.post('/fleet/check', { config: ADMIN }, async (request, reply) => {
    const page = String((request.body as Record<string, unknown> | undefined)?.page ?? '1')
    const { tenants, p } = await pageOfTenants({ page })
    const back = p.pageNumber === 1 ? base : `${base}?page=${p.pageNumber}`
    let failed = 0
    const checkable = tenants.filter((t) => t.status === 'active' || t.status === 'suspended')
    // A few at a time: each check opens its own connections to a tenant database.
    await mapLimit(checkable, 4, async (t) => { await tenancy.migrationStatus(t).catch(() => { failed++ }) })
    return await redirectWith(ctx, request, reply, back, { type: failed === 0 ? 'success' : 'error', text: `Checked ${checkable.length} tenant database(s)${failed === 0 ? '' : `; ${failed} could not be read`}.` })
  })
}
