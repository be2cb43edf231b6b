import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../render.js'
import { LIST_PAGE_SIZE, paging, readListParams } from '../list-view.js'
import { FleetRuns } from './fleet-runs.js'

const ADMIN = { admin: 'manage_tenants' as const }

/** The fleet page: every tenant's migration state, "Migrate all" with live progress, and failed tenants with their reason. */
export function fleetRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const runs = new FleetRuns(tenancy.orm, tenancy)
  const base = `${ctx.prefix}/fleet`

  app.get('/fleet', { config: ADMIN }, async (request, reply) => {
    const params = readListParams(request.query, ['identifier'] as const, 'identifier')
    const page = async (n: number): Promise<Awaited<ReturnType<typeof tenancy.tenants.list>>> =>
      await tenancy.tenants.list({ sort: 'identifier', limit: LIST_PAGE_SIZE, offset: (n - 1) * LIST_PAGE_SIZE })
    let { total, tenants } = await page(params.page)
    const p = paging(base, params, total, 'identifier')
    // A page past the end (a hand-made link) shows the last one.
    if (p.pageNumber < params.page && total > 0) ({ total, tenants } = await page(p.pageNumber))
    const run = await runs.latest()
    const failedInRun = new Map((run?.failures ?? []).map((f) => [f.key, f.error]))
    const rows = await Promise.all(tenants.map(async (t) => {
      if (t.status === 'failed') return { key: t.key, identifier: t.identifier, state: 'failed', detail: `Provisioning failed: ${t.failureReason ?? 'unknown reason'}` }
      if (t.status === 'provisioning') return { key: t.key, identifier: t.identifier, state: 'pending', detail: 'Provisioning its database.' }
      try {
        const status = await tenancy.migrationStatus(t)
        const lastError = failedInRun.get(t.key)
        if (status.pending.length > 0 && lastError !== undefined) return { key: t.key, identifier: t.identifier, state: 'failed', detail: `Migration failed: ${lastError}` }
        return status.pending.length === 0
          ? { key: t.key, identifier: t.identifier, state: 'up-to-date', detail: `${status.executed.length} migration(s) ran${status.executed.length === 0 ? '' : `, the newest ${status.executed.at(-1) as string}`}.` }
          : { key: t.key, identifier: t.identifier, state: 'pending', detail: `Pending: ${status.pending.join(', ')}` }
      } catch (error) {
        return { key: t.key, identifier: t.identifier, state: 'failed', detail: `The database cannot be read: ${(error as Error).message}` }
      }
    }))
    return await renderPage(ctx, request, reply, 'fleet/index', 'Fleet', {
      rows,
      paging: p,
      run: run === null ? null : { ...run, startedAt: run.startedAt.toISOString().replace('T', ' ').slice(0, 19), percent: run.total === 0 ? 100 : Math.round(run.done * 100 / run.total) },
      // While a run goes on, the page reloads itself (no JavaScript); a reload shows the same run.
      refresh: run?.running === true ? 2 : false
    })
  })

  app.post('/fleet/migrate', { config: ADMIN }, async (request, reply) => {
    const run = await runs.start(request.admin?.email ?? 'system')
    if (run === null) return await redirectWith(ctx, request, reply, base, { type: 'info', text: 'A "Migrate all" run is going on already; its progress is below.' })
    await ctx.audit.recordFor(request, 'fleet.migrate', { change: { run: run.id, tenants: run.total } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Migrating ${run.total} tenant(s); this page follows the progress.` })
  })
}
