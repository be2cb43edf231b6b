import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../render.js'
import { CentralUserEntity } from '../../entities/central/user.entity.js'
import { TenantClusterEntity } from '../../entities/central/tenant-cluster.entity.js'

/** The admin's home: counts and links to the areas the admin may use. */
export function dashboardRoutes (app: FastifyInstance, ctx: AdminContext): void {
  app.get('/', { config: { admin: 'signed-in' } }, async (request, reply) => {
    const tenants = await ctx.tenancy.tenants.counts()
    const em = ctx.tenancy.orm.em.fork()
    const counts = {
      tenants: tenants.total,
      active: tenants.byStatus.active,
      failed: tenants.byStatus.failed,
      users: await em.count(CentralUserEntity),
      clusters: await em.count(TenantClusterEntity)
    }
    const has = (p: 'manage_tenants' | 'manage_users' | 'manage_tenant_groups'): boolean => request.admin?.permissions.has(p) === true
    return await renderPage(ctx, request, reply, 'dashboard', 'Dashboard', {
      counts,
      can: { tenants: has('manage_tenants'), users: has('manage_users'), clusters: has('manage_tenant_groups') }
    })
  })
}
