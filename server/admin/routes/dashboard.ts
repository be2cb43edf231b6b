import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../render.js'

/** The admin's home: counts and links to the areas the admin may use. */
export function dashboardRoutes (app: FastifyInstance, ctx: AdminContext): void {
  app.get('/', { config: { admin: 'signed-in' } }, async (request, reply) => {
    const rows = await ctx.tenancy.orm.em.getConnection().execute(
      `select (select count(*) from tenants)::int as tenants,
              (select count(*) from tenants where status = 'active')::int as active,
              (select count(*) from tenants where status = 'failed')::int as failed,
              (select count(*) from users)::int as users,
              (select count(*) from tenant_clusters)::int as clusters`, [], 'all')
    const has = (p: 'manage_tenants' | 'manage_users' | 'manage_tenant_groups'): boolean => request.admin?.permissions.has(p) === true
    return await renderPage(ctx, request, reply, 'dashboard', 'Dashboard', {
      counts: rows[0],
      can: { tenants: has('manage_tenants'), users: has('manage_users'), clusters: has('manage_tenant_groups') }
    })
  })
}
