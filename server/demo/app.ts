import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { fileURLToPath } from 'node:url'
import view from '@fastify/view'
import { Eta } from 'eta'
import { tenancyPlugin, TenantEntity, IMPERSONATION_PATH, type TenancyOptions } from '../index.js'
import { ProjectEntity, TenantUserCopyEntity } from './tenant-schema.js'
import { adminPlugin, type AdminOptions } from '../admin/index.js'
import { tenantErrorPages } from './tenant-error-pages.js'

export interface DemoOptions {
  tenancy: TenancyOptions
  admin: AdminOptions
  /** Port the demo listens on, to print links that work. */
  port: number
  production?: boolean
}

async function demo (app: FastifyInstance, options: DemoOptions): Promise<void> {
  await app.register(view, {
    engine: { eta: new Eta() },
    // The demo's own templates, next to it (the admin renders its own from the package).
    root: fileURLToPath(new URL('./views', import.meta.url)),
    production: options.production ?? false
  })
  await app.register(tenancyPlugin, options.tenancy)
  await app.register(adminPlugin, options.admin)
  // A browser visiting a suspended or unknown tenant gets a page, not JSON.
  tenantErrorPages(app)

  // One page, two faces: on a central domain the list of tenants, on a
  // tenant's domain its name and the rows of its own database.
  app.get('/', { config: { tenancy: 'universal' } }, async (request, reply) => {
    if (request.tenant !== null) {
      const projects = await request.tenantEm.find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
      // An admin's impersonation link: show whom the page is opened as, and the way out.
      const as = request.impersonation
      const user = as === null ? null : await request.tenantEm.findOne(TenantUserCopyEntity, { globalId: as.userId })
      return await reply.view('tenant.eta', {
        tenant: { name: request.tenant.name, identifier: request.tenant.identifier },
        projects: projects.map((p) => p.title),
        impersonation: as === null ? null : { name: user?.name ?? as.userId, by: as.admin.email ?? 'an admin', end: `${IMPERSONATION_PATH}/end` }
      })
    }
    const em = app.tenancy.orm.em.fork()
    const tenants = await em.find(TenantEntity, {}, { populate: ['domains'], orderBy: { identifier: 'asc' } })
    return await reply.view('home.eta', {
      tenants: tenants.map((t) => ({ identifier: t.identifier, name: t.name, status: t.status, domains: t.domains.getItems().map((d) => d.domain) })),
      port: options.port
    })
  })

  app.get('/projects.json', { config: { tenancy: 'tenant' } }, async (request) => {
    const projects = await request.tenantEm.find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
    return { tenant: request.tenant?.identifier, projects: projects.map((p) => p.title) }
  })
}

/** The demo app: fastify-tenancy used the way an app would use it. */
export const demoApp = fp(demo, { name: 'fastify-tenancy-demo' })
