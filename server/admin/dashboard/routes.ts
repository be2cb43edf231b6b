import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../ui/render.js'
import { CentralUserEntity } from '../../entities/central/user.entity.js'
import { TenantClusterEntity } from '../../entities/central/tenant-cluster.entity.js'

/** The admin's home: counts and links to the areas the admin may use. */
export function dashboardRoutes (app: FastifyInstance, ctx: AdminContext): void {
  app.get('/', { config: { admin: 'signed-in' } }, async (request, reply) => {
    const has = (p: 'manage_tenants' | 'manage_users' | 'manage_tenant_groups'): boolean => request.admin?.permissions.has(p) === true
    // Only what the admin may see is counted (no cluster count without manage_tenant_groups).
    const tenants = has('manage_tenants') ? await ctx.tenancy.tenants.counts() : null
    const em = ctx.tenancy.orm.em.fork()
    const counts = {
      tenants: tenants?.total ?? 0,
      active: tenants?.byStatus.active ?? 0,
      failed: tenants?.byStatus.failed ?? 0,
      users: has('manage_users') ? await em.count(CentralUserEntity) : 0,
      clusters: has('manage_tenant_groups') ? await em.count(TenantClusterEntity) : 0
    }
    return await renderPage(ctx, request, reply, 'dashboard', 'Dashboard', {
      counts,
      can: { tenants: has('manage_tenants'), users: has('manage_users'), clusters: has('manage_tenant_groups') }
    })
  })
}
