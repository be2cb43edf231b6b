import type { FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import type { Tenant } from '../../tenant.js'

export interface TenantMovesView {
  /** The admin may move, export and import tenants (`move_tenants`). */
  canMove: boolean
  /** The tenant's move under way, if any: the page links to its status. */
  running: { toHost: string } | null
}

/** What the tenant page shows of moves: the Move and Export actions, and a move under way. */
export async function tenantMovesView (ctx: AdminContext, request: FastifyRequest, tenant: Pick<Tenant, 'key'>): Promise<TenantMovesView> {
  const canMove = request.admin?.permissions.has('move_tenants') === true
  if (!canMove) return { canMove, running: null }
  const latest = await ctx.tenancy.moves.status(tenant)
  return { canMove, running: latest?.state === 'running' ? { toHost: latest.toHost } : null }
}
