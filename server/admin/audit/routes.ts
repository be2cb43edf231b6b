import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../ui/render.js'
import { paging, readListParams } from '../ui/list-view.js'
import { UUID_PATTERN } from '../../tenant.js'
import { changeLines } from './change-view.js'

/** The audit log, listed newest first and filtered by who, what, tenant or cluster. */
export function auditRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const base = `${ctx.prefix}/audit`
  app.get('/audit', { config: { admin: 'manage_admins' } }, async (request, reply) => {
    const raw = request.query as Record<string, unknown>
    const text = (v: unknown): string => typeof v === 'string' ? v.trim().slice(0, 255) : ''
    // Without manage_tenant_groups no cluster shows here: not its entries, nor their count, nor a cluster field of a change.
    const canClusters = request.admin?.permissions.has('manage_tenant_groups') === true
    const action = /^[a-z0-9_.-]*$/.test(text(raw.action)) ? text(raw.action) : ''
    const filters = {
      actor: text(raw.actor).toLowerCase(),
      action: !canClusters && action.startsWith('cluster.') ? '' : action,
      tenant: UUID_PATTERN.test(text(raw.tenant)) ? text(raw.tenant) : '',
      cluster: canClusters && UUID_PATTERN.test(text(raw.cluster)) ? text(raw.cluster) : ''
    }
    const params = readListParams(raw, ['at'] as const, 'at')
    const query = { actorEmail: filters.actor, action: filters.action, tenantKey: filters.tenant, clusterId: filters.cluster, withClusters: canClusters }
    let { total, entries } = await ctx.audit.list({ ...query, page: params.page, pageSize: 50 })
    const p = paging(base, params, total, 'at', filters, 50)
    // A page past the end (a hand-made link) shows the last one.
    if (p.pageNumber < params.page && total > 0) ({ total, entries } = await ctx.audit.list({ ...query, page: p.pageNumber, pageSize: 50 }))
    const shown = entries.map((e) => ({
      at: e.at.toISOString().replace('T', ' ').slice(0, 19),
      actor: e.actorEmail,
      action: e.action,
      tenant: e.tenantIdentifier,
      tenantKey: e.tenantKey,
      cluster: canClusters ? e.clusterName : null,
      clusterId: canClusters ? e.clusterId : null,
      change: changeLines(e.change)
    }))
    return await renderPage(ctx, request, reply, 'audit/index', 'Audit log', { entries: shown, filters, actions: await ctx.audit.actions(canClusters), paging: p, canClusters })
  })
}
