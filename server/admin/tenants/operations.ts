import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { field } from '../ui/forms.js'
import { UUID_PATTERN, type Tenant } from '../../tenant.js'
import { IMPERSONATION_PATH } from '../../impersonation/impersonation-routes.js'
import { BYPASS_PARAMETER } from '../../maintenance/maintenance-mode.js'
import { UserQueries } from '../users/user-queries.js'
import { originFor, requestHost } from '../../identification/host.js'
import { InvalidHostError } from '../../errors.js'

/** What the tenant page shows of renames, maintenance and impersonation. */
export interface TenantOperationsView {
  formerNames: Array<{ kind: 'identifier' | 'domain', name: string, expires: string }>
  maintenance: { message: string | null, until: string | null, allow: string } | null
  canImpersonate: boolean
}

const when = (date: Date): string => date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'

/** The tenant page's operations panel, for `views/admin/tenants/_operations.eta`. */
export async function tenantOperationsView (ctx: AdminContext, request: FastifyRequest, tenant: Tenant): Promise<TenantOperationsView> {
  const state = ctx.tenancy.maintenanceOf(tenant)
  return {
    formerNames: (await ctx.tenancy.formerNames(tenant)).map((f) => ({ kind: f.kind, name: f.name, expires: when(f.expiresAt) })),
    maintenance: state === null ? null : { message: state.message, until: state.until === null ? null : when(state.until), allow: state.allow.join(', ') },
    canImpersonate: request.admin?.permissions.has('impersonate_users') ?? false
  }
}

/**
 * Where a tenant's app answers, seen from the admin's browser: its primary
 * domain, else its subdomain under the central domain the admin is using,
 * with the admin's scheme and port.
 */
async function tenantOrigin (ctx: AdminContext, request: FastifyRequest, tenant: Tenant): Promise<string> {
  const domains = await ctx.tenancy.domains.list(tenant)
  const domain = (domains.find((d) => d.primary) ?? domains[0])?.domain
  // The admin's own host, checked (the forwarded one behind a trusted proxy), never the raw Host header.
  const hostname = requestHost(request).name
  const central = ctx.centralDomains.includes(hostname) && !/^[\d.]+$/.test(hostname)
    ? hostname
    : ctx.centralDomains.find((d) => !/^[\d.]+$/.test(d)) ?? 'localhost'
  const origin = originFor(request, domain ?? `${tenant.identifier}.${central}`)
  if (origin === null) throw new InvalidHostError()
  return origin
}

/** Maintenance switch and impersonation links, posted from the tenant page. */
export function tenantOperationRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const users = new UserQueries(tenancy.orm)
  const base = `${ctx.prefix}/tenants`
  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Tenant | null> => {
    const key = (request.params as { key: string }).key
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return tenant
  }
  const back = async (request: FastifyRequest, reply: FastifyReply, tenant: Tenant, type: 'success' | 'error', text: string): Promise<FastifyReply> =>
    await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type, text })

  app.post('/tenants/:key/maintenance', { config: { admin: 'manage_tenants' } }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const minutesText = field(request.body, 'minutes').trim()
    const minutes = minutesText === '' ? null : Number(minutesText)
    if (minutes !== null && (!Number.isInteger(minutes) || minutes < 1 || minutes > 60 * 24 * 30)) {
      return await back(request, reply, tenant, 'error', 'Minutes must be a whole number from 1 to 43,200, or empty for "until I end it".')
    }
    const allow = field(request.body, 'allow').split(/[\s,]+/).filter(Boolean)
    try {
      const started = await tenancy.maintenance(tenant, {
        message: field(request.body, 'message').trim().slice(0, 1001) || null,
        until: minutes === null ? null : ctx.clock() + minutes * 60_000,
        allow
      })
      await ctx.audit.recordFor(request, 'tenant.maintenance.start', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { message: started.message, until: started.until?.toISOString() ?? null, allow: started.allow } })
      const link = `${await tenantOrigin(ctx, request, tenant)}/?${BYPASS_PARAMETER}=${started.bypassToken}`
      return await back(request, reply, tenant, 'success', `Tenant ${tenant.identifier} is in maintenance: its pages answer 503. Your bypass link (shown once): ${link}`)
    } catch (error) {
      if ((error as { code?: string }).code === 'FST_TENANCY_INVALID_MAINTENANCE') return await back(request, reply, tenant, 'error', (error as Error).message)
      throw error
    }
  })

  app.post('/tenants/:key/maintenance/end', { config: { admin: 'manage_tenants' } }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    await tenancy.endMaintenance(tenant)
    await ctx.audit.recordFor(request, 'tenant.maintenance.end', { tenant: { key: tenant.key, identifier: tenant.identifier } })
    return await back(request, reply, tenant, 'success', `Tenant ${tenant.identifier} serves again.`)
  })

  app.post('/tenants/:key/impersonate', { config: { admin: 'impersonate_users' } }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const user = field(request.body, 'user').slice(0, 255)
    const name = await users.attachedName(tenant.key, user)
    if (name === null) return await back(request, reply, tenant, 'error', 'That user is not one of this tenant\'s users.')
    if (tenant.status !== 'active') return await back(request, reply, tenant, 'error', `Tenant ${tenant.identifier} is ${tenant.status}; only an active tenant can be opened.`)
    const admin = request.admin
    const { token } = await tenancy.impersonation.issue({ tenant, userId: user, admin: { id: admin?.id ?? null, email: admin?.email ?? null } })
    // A page with the link rather than a redirect: the admin's CSP (form-action 'self') rightly stops a form post from landing on another origin.
    const link = `${await tenantOrigin(ctx, request, tenant)}${IMPERSONATION_PATH}?token=${encodeURIComponent(token)}`
    return await renderPage(ctx, request, reply, 'tenants/impersonate', `Open ${tenant.identifier}`, { tenant: { key: tenant.key, identifier: tenant.identifier, name: tenant.name }, user: name, link })
  })
}
