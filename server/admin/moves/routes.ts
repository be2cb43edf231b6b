import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { field } from '../ui/forms.js'
import { UUID_PATTERN, type Tenant } from '../../tenant.js'
import { MoveRuns } from './move-runs.js'
import { moveStatusView } from './move-view.js'

const MOVE = { admin: 'move_tenants' as const }
/** Refusals a move answers with (no such host, logical replication missing, another move under way): shown to the admin, not a 500. */
const REFUSALS = new Set(['FST_TENANCY_INVALID_MOVE', 'FST_TENANCY_MOVE_UNAVAILABLE', 'FST_TENANCY_MOVE_IN_PROGRESS'])

/**
 * Moving a tenant to another database host from its page: a form to pick
 * the host (a dialog with admin.js), the move run in the background, and a
 * status page that follows its recorded steps until it is done.
 */
export function moveRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const runs = new MoveRuns(tenancy.move, app.log)
  app.addHook('onClose', async () => { await runs.settled() })
  const base = `${ctx.prefix}/tenants`
  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Tenant | null> => {
    const key = (request.params as { key: string }).key
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return tenant
  }
  const hostOf = (tenant: Tenant): string => tenant.databaseHost ?? ctx.defaultHost
  const crumbs = (tenant: Tenant, label: string): Array<{ label: string, href: string | null }> => [
    { label: 'Dashboard', href: ctx.prefix },
    { label: 'Tenants', href: base },
    { label: tenant.identifier, href: `${base}/${tenant.key}` },
    { label, href: null }
  ]
  const statusUrl = (tenant: Tenant): string => `${base}/${tenant.key}/move/status`

  const form = async (request: FastifyRequest, reply: FastifyReply, tenant: Tenant, error: string | null, status = 200): Promise<FastifyReply> => {
    const from = hostOf(tenant)
    return await renderPage(ctx, request, reply, 'moves/move', `Move ${tenant.identifier}`, {
      tenant: { key: tenant.key, identifier: tenant.identifier },
      from,
      hosts: ctx.hosts.filter((h) => h !== from),
      error,
      crumbs: crumbs(tenant, 'Move')
    }, status)
  }

  app.get('/tenants/:key/move', { config: MOVE }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const latest = await tenancy.moves.status(tenant)
    if (latest?.state === 'running') return reply.redirect(statusUrl(tenant), 303)
    return await form(request, reply, tenant, null)
  })

  app.post('/tenants/:key/move', { config: MOVE }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const host = field(request.body, 'host').slice(0, 63)
    if (!ctx.hosts.includes(host)) return await form(request, reply, tenant, 'Pick one of the database hosts.', 422)
    const admin = request.admin
    const actor = admin === null ? null : { id: admin.id, email: admin.email }
    const who = { key: tenant.key, identifier: tenant.identifier }
    // A move this process already drives: its page, and nothing logged twice.
    if (runs.isRunning(tenant.key)) return reply.redirect(statusUrl(tenant), 303)
    // The outcome is logged after the start, even when the move is quicker than the start's own write;
    // a move refused or failed before it began logs nothing. Settled on every way out of this handler.
    let settle = (_began: boolean): void => {}
    const startLogged = new Promise<boolean>((resolve) => { settle = resolve })
    let began = false
    try {
      try {
        await runs.start(tenant, host, async (outcome) => {
          if (!await startLogged) return
          const failed = outcome instanceof Error
          await ctx.audit.record({ actor, action: failed ? 'tenant.move.failed' : 'tenant.move.done', tenant: who, change: failed ? { host, error: outcome.message.slice(0, 500) } : { from: outcome.fromHost, host } })
        })
        began = true
      } catch (error) {
        const code = (error as { code?: string }).code ?? ''
        if (REFUSALS.has(code)) return await form(request, reply, tenant, (error as Error).message, 409)
        // A first step that failed is recorded on the move: its status page says why and offers to continue or abort.
        if ((await tenancy.moves.status(tenant))?.state !== 'running') throw error
        began = true
        await ctx.audit.recordFor(request, 'tenant.move.start', { tenant: who, change: { from: hostOf(tenant), host } })
        return await redirectWith(ctx, request, reply, statusUrl(tenant), { type: 'error', text: `The move of ${tenant.identifier} stopped: ${(error as Error).message}` })
      }
      await ctx.audit.recordFor(request, 'tenant.move.start', { tenant: who, change: { from: hostOf(tenant), host } })
      return await redirectWith(ctx, request, reply, statusUrl(tenant), { type: 'success', text: `Moving ${tenant.identifier} to host ${host}: its requests keep being served; they wait a moment at the switch.` })
    } finally {
      settle(began)
    }
  })

  app.get('/tenants/:key/move/status', { config: MOVE }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const latest = await tenancy.moves.status(tenant)
    const move = latest === null ? null : moveStatusView(latest, runs.isRunning(tenant.key))
    const running = move?.state === 'running' && move.active
    return await renderPage(ctx, request, reply, 'moves/status', `Moving ${tenant.identifier}`, {
      tenant: { key: tenant.key, identifier: tenant.identifier, host: hostOf(tenant) },
      move,
      crumbs: crumbs(tenant, 'Move status'),
      // While this process drives it, the page looks again every 2 s (admin.js redraws it in place; without JavaScript, a meta refresh).
      refresh: running ? 2 : false,
      refreshMain: true
    })
  })

  app.post('/tenants/:key/move/abort', { config: MOVE }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    if (runs.isRunning(tenant.key)) return await redirectWith(ctx, request, reply, statusUrl(tenant), { type: 'error', text: `The move of ${tenant.identifier} is running; wait for it to finish or fail before aborting it.` })
    try {
      await tenancy.moves.abort(tenant)
    } catch (error) {
      if ((error as { code?: string }).code !== 'FST_TENANCY_INVALID_MOVE') throw error
      return await redirectWith(ctx, request, reply, statusUrl(tenant), { type: 'error', text: (error as Error).message })
    }
    await ctx.audit.recordFor(request, 'tenant.move.abort', { tenant: { key: tenant.key, identifier: tenant.identifier } })
    return await redirectWith(ctx, request, reply, statusUrl(tenant), { type: 'success', text: `The move of ${tenant.identifier} is undone: it serves from host ${hostOf(tenant)} as before.` })
  })
}
