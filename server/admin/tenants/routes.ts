import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../render.js'
import { field, hasErrors, type FieldErrors } from '../forms.js'
import { UUID_PATTERN, type Tenant } from '../../tenant.js'
import { listUrl, PAGE_SIZE, readListQuery, type TenantListQuery } from './list-query.js'
import { readTenantForm, type TenantFormValues } from './tenant-form.js'
import { tenantOperationsView } from './operations.js'
import { tenancyRuntime } from '../../tenancy.js'

const ADMIN = { admin: 'manage_tenants' as const }

/** Errors a user can fix: shown as a message, never as a 500. */
function userError (error: unknown): string | null {
  const code = String((error as { code?: string }).code ?? '')
  return code.startsWith('FST_TENANCY_') && code !== 'FST_TENANCY_MISCONFIGURED' ? (error as Error).message : null
}

/** The Tenants area: list, create, a tenant's page with its domains, database, migrations and users, edit and delete. */
export function tenantRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/tenants`
  const db = async (sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> => await tenancy.orm.em.getConnection().execute(sql, params as any[], 'all')
  /** The list's filters in the core's terms (the admin runs no SQL of its own on tenants or domains). */
  const filters = (query: TenantListQuery): Parameters<typeof tenancy.tenants.list>[0] => ({
    search: query.q === '' ? undefined : query.q.toLowerCase(),
    status: query.status === '' ? undefined : query.status,
    clusterId: query.cluster === '' ? undefined : query.cluster === 'none' ? null : query.cluster
  })
  /** A tenant's row with its cluster, failure reason and creation time. */
  const listing = async (tenant: Tenant): Promise<Awaited<ReturnType<typeof tenancy.tenants.list>>['tenants'][number] | undefined> =>
    (await tenancy.tenants.list({ keys: [tenant.key] })).tenants[0]
  const clusters = async (): Promise<Array<{ id: string, name: string }>> => (await tenancy.clusters.list()).map((c) => ({ id: c.id, name: c.name }))

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Tenant | null> => {
    const key = (request.params as { key: string }).key
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return tenant
  }

  app.get('/tenants', { config: ADMIN }, async (request, reply) => {
    const query = readListQuery(request.query)
    const page = async (n: number): ReturnType<typeof tenancy.tenants.list> =>
      await tenancy.tenants.list({ ...filters(query), sort: query.sort, dir: query.dir, limit: PAGE_SIZE, offset: (n - 1) * PAGE_SIZE })
    let found = await page(query.page)
    const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE))
    const pageNumber = Math.min(query.page, pages)
    // A page past the end shows the last one.
    if (pageNumber !== query.page) found = await page(pageNumber)
    const total = found.total
    const sortLinks = Object.fromEntries((['identifier', 'name', 'status', 'created'] as const).map((s) => [s, listUrl(base, query, { sort: s, dir: query.sort === s && query.dir === 'asc' ? 'desc' : 'asc', page: 1 })]))
    return await renderPage(ctx, request, reply, 'tenants/index', 'Tenants', {
      query,
      clusters: await clusters(),
      tenants: found.tenants.map((r) => ({ key: r.key, identifier: r.identifier, name: r.name, status: r.status, cluster: r.cluster?.name ?? null, domains: r.domains, created: r.createdAt.toISOString().slice(0, 10) })),
      total,
      pageNumber,
      pages,
      sortLinks,
      prev: pageNumber > 1 ? listUrl(base, query, { page: pageNumber - 1 }) : null,
      next: pageNumber < pages ? listUrl(base, query, { page: pageNumber + 1 }) : null
    })
  })

  const formPage = async (request: FastifyRequest, reply: FastifyReply, values: TenantFormValues, errors: FieldErrors, tenant: Tenant | null, status = 200): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'tenants/form', tenant === null ? 'New tenant' : `Edit ${tenant.identifier}`, { values, errors, tenant, clusters: await clusters(), action: tenant === null ? `${base}/new` : `${base}/${tenant.key}/edit` }, status)

  app.get('/tenants/new', { config: ADMIN }, async (request, reply) => {
    return await formPage(request, reply, { identifier: '', name: '', domains: '', cluster: '' }, {}, null)
  })

  app.post('/tenants/new', { config: ADMIN }, async (request, reply) => {
    const errors: FieldErrors = {}
    const values = readTenantForm(request.body, tenancyRuntime(tenancy).options.centralDomains, errors, true)
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, null, 422)
    let tenant: Tenant
    try {
      tenant = await tenancy.create({ identifier: values.identifier, name: values.name, domains: values.domainList })
    } catch (error) {
      const code = (error as { code?: string }).code
      if (code === 'FST_TENANCY_PROVISIONING_FAILED') {
        const failed = await tenancy.tenants.find(values.identifier)
        if (failed !== null) return await redirectWith(ctx, request, reply, `${base}/${failed.key}`, { type: 'error', text: (error as Error).message })
      }
      const message = userError(error)
      if (message === null) throw error
      if (code === 'FST_TENANCY_DOMAIN_TAKEN' || code === 'FST_TENANCY_INVALID_DOMAIN') errors.domains = message
      else errors.identifier = message
      return await formPage(request, reply, values, errors, null, 422)
    }
    if (values.cluster !== '') {
      try {
        await tenancy.clusters.move(tenant.key, values.cluster)
      } catch (error) {
        const message = userError(error)
        if (message === null) throw error
        return await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type: 'error', text: `Tenant created, but not added to the cluster: ${message}` })
      }
    }
    return await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type: 'success', text: `Tenant ${tenant.identifier} created with its own database.` })
  })

  app.get('/tenants/:key', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const target = tenancy.tenants.target(tenant)
    let migrations: { executed: string[], pending: string[] } | null = null
    let migrationsError: string | null = null
    if (tenant.status === 'active' || tenant.status === 'suspended') {
      try {
        migrations = await tenancy.migrationStatus(tenant)
      } catch {
        migrationsError = 'The tenant database cannot be reached right now.'
      }
    }
    const row = await listing(tenant)
    const domains = await tenancy.domains.list(tenant)
    const users = await db('select u.global_id, u.name, u.email from tenant_users p join users u on u.global_id = p.global_user_id where p.tenant_key = ? order by u.name', [tenant.key])
    return await renderPage(ctx, request, reply, 'tenants/show', tenant.identifier, {
      tenant: { key: tenant.key, identifier: tenant.identifier, name: tenant.name, status: tenant.status, resourceKey: tenant.resourceKey, failureReason: row?.failureReason ?? null, created: row?.createdAt },
      cluster: row?.cluster ?? null,
      database: { name: target.name, host: target.host, schema: target.schema },
      migrations,
      migrationsError,
      domains,
      users: users.map((u) => ({ globalId: u.global_id, name: u.name, email: u.email })),
      operations: await tenantOperationsView(ctx, request, tenant),
      // Provisioning takes milliseconds; the page looks again until it is done.
      refresh: tenant.status === 'provisioning',
      domainValue: '',
      domainError: null
    })
  })

  const back = async (request: FastifyRequest, reply: FastifyReply, tenant: Tenant, type: 'success' | 'error', text: string): Promise<FastifyReply> =>
    await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type, text })

  /** The domain a `/domains/:id/...` URL names, when it is this tenant's. */
  const domainOf = async (request: FastifyRequest, tenant: Tenant): Promise<string | null> => {
    const id = Number((request.params as { id: string }).id)
    return (await tenancy.domains.list(tenant)).find((d) => d.id === id)?.domain ?? null
  }

  app.post('/tenants/:key/domains', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const domain = field(request.body, 'domain').slice(0, 300)
    try {
      await tenancy.domains.add(tenant, domain)
    } catch (error) {
      const message = userError(error)
      if (message === null) throw error
      return await back(request, reply, tenant, 'error', message)
    }
    return await back(request, reply, tenant, 'success', `Domain ${domain} added.`)
  })

  app.post('/tenants/:key/domains/:id/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const found = await domainOf(request, tenant)
    if (found === null) return await back(request, reply, tenant, 'error', 'That domain is not this tenant\'s.')
    await tenancy.domains.remove(tenant, found)
    return await back(request, reply, tenant, 'success', `Domain ${found} removed.`)
  })

  app.post('/tenants/:key/domains/:id/primary', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const found = await domainOf(request, tenant)
    if (found === null) return await back(request, reply, tenant, 'error', 'That domain is not this tenant\'s.')
    await tenancy.domains.makePrimary(tenant, found)
    return await back(request, reply, tenant, 'success', `${found} is now the primary domain.`)
  })

  app.post('/tenants/:key/migrate', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const [result] = await tenancy.migrate({ tenants: [tenant.key] })
    if (result === undefined || !result.ok) return await back(request, reply, tenant, 'error', `Migrations failed: ${result?.error ?? 'unknown error'}`)
    return await back(request, reply, tenant, 'success', result.migrations.length === 0 ? 'Migrations are up to date.' : `Ran ${result.migrations.length} migration(s): ${result.migrations.join(', ')}.`)
  })

  app.post('/tenants/:key/provision', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    if (tenant.status !== 'failed') return await back(request, reply, tenant, 'error', 'Only a tenant whose provisioning failed can be provisioned again.')
    try {
      await tenancy.provision(tenant)
    } catch (error) {
      return await back(request, reply, tenant, 'error', (error as Error).message)
    }
    return await back(request, reply, tenant, 'success', `Tenant ${tenant.identifier} provisioned and active.`)
  })

  app.post('/tenants/:key/status', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const wanted = field(request.body, 'status')
    if (!((tenant.status === 'active' && wanted === 'suspended') || (tenant.status === 'suspended' && wanted === 'active'))) {
      return await back(request, reply, tenant, 'error', 'Only an active tenant can be suspended, and only a suspended one reactivated.')
    }
    try {
      if (wanted === 'suspended') await tenancy.suspend(tenant)
      else await tenancy.activate(tenant)
    } catch (error) {
      // Someone else changed the status meanwhile.
      const message = userError(error)
      if (message === null) throw error
      return await back(request, reply, tenant, 'error', message)
    }
    return await back(request, reply, tenant, 'success', wanted === 'suspended' ? `Tenant ${tenant.identifier} suspended: its requests get 403.` : `Tenant ${tenant.identifier} is active again.`)
  })

  app.get('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const cluster = (await listing(tenant))?.cluster?.id ?? ''
    return await formPage(request, reply, { identifier: tenant.identifier, name: tenant.name, domains: '', cluster }, {}, tenant)
  })

  app.post('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const errors: FieldErrors = {}
    const values = readTenantForm(request.body, tenancyRuntime(tenancy).options.centralDomains, errors, false)
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, tenant, 422)
    try {
      // One change, all or nothing: a refused identifier or cluster move saves none of the fields.
      await tenancy.update(tenant, { identifier: values.identifier, name: values.name, clusterId: values.cluster === '' ? null : values.cluster })
    } catch (error) {
      const code = (error as { code?: string }).code
      const message = userError(error)
      if (message === null) throw error
      if (code === 'FST_TENANCY_CLUSTER_RULE' || code === 'FST_TENANCY_CLUSTER_NOT_FOUND') {
        return await back(request, reply, tenant, 'error', `Nothing was saved and the cluster was not changed: ${message}`)
      }
      if (code === 'FST_TENANCY_IDENTIFIER_TAKEN' || code === 'FST_TENANCY_INVALID_IDENTIFIER') errors.identifier = message
      else errors.name = message
      return await formPage(request, reply, values, errors, tenant, 422)
    }
    const renamed = values.identifier !== tenant.identifier ? ` Its identifier is now ${values.identifier}: its subdomain and URLs changed.` : ''
    return await back(request, reply, tenant, 'success', `Tenant saved.${renamed}`)
  })

  app.get('/tenants/:key/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    return await renderPage(ctx, request, reply, 'tenants/delete', `Delete ${tenant.identifier}`, { tenant: { key: tenant.key, identifier: tenant.identifier }, value: '', error: null })
  })

  app.post('/tenants/:key/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const typed = field(request.body, 'confirm')
    if (typed !== tenant.identifier) {
      return await renderPage(ctx, request, reply, 'tenants/delete', `Delete ${tenant.identifier}`, { tenant: { key: tenant.key, identifier: tenant.identifier }, value: typed.slice(0, 100), error: `Type ${tenant.identifier} to confirm.` }, 422)
    }
    try {
      await tenancy.delete(tenant)
    } catch (error) {
      const message = userError(error)
      if (message === null) throw error
      return await back(request, reply, tenant, 'error', message)
    }
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Tenant ${tenant.identifier} and its database were deleted.` })
  })
}
