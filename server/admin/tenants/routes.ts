import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../render.js'
import { field, hasErrors, type FieldErrors } from '../forms.js'
import { checkDomain } from '../../lifecycle/tenant-input.js'
import { UUID_PATTERN, type Tenant } from '../../tenant.js'
import { listUrl, PAGE_SIZE, readListQuery, SORT_COLUMNS } from './list-query.js'
import { readTenantForm, type TenantFormValues } from './tenant-form.js'
import { tenantOperationsView } from './operations.js'
import { tenancyRuntime } from '../../tenancy.js'

const ADMIN = { admin: 'manage_tenants' as const }
type Row = Record<string, any>

/** Errors a user can fix: shown as a message, never as a 500. */
function userError (error: unknown): string | null {
  const code = String((error as { code?: string }).code ?? '')
  return code.startsWith('FST_TENANCY_') && code !== 'FST_TENANCY_MISCONFIGURED' ? (error as Error).message : null
}

/** The Tenants area: list, create, a tenant's page with its domains, database, migrations and users, edit and delete. */
export function tenantRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/tenants`
  const db = async (sql: string, params: unknown[] = []): Promise<Row[]> => await tenancy.orm.em.getConnection().execute(sql, params as any[], 'all')
  const clusters = async (): Promise<Array<{ id: string, name: string }>> => (await tenancy.clusters.list()).map((c) => ({ id: c.id, name: c.name }))

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Tenant | null> => {
    const key = (request.params as { key: string }).key
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return tenant
  }

  app.get('/tenants', { config: ADMIN }, async (request, reply) => {
    const query = readListQuery(request.query)
    const where: string[] = []
    const params: unknown[] = []
    if (query.q !== '') {
      const like = `%${query.q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`
      where.push('(lower(t.identifier) like ? or lower(t.name) like ? or exists (select 1 from domains d where d.tenant_key = t.key and d.domain like ?))')
      params.push(like, like, like)
    }
    if (query.status !== '') { where.push('t.status = ?'); params.push(query.status) }
    if (query.cluster === 'none') where.push('t.tenant_cluster_id is null')
    else if (query.cluster !== '') { where.push('t.tenant_cluster_id = ?'); params.push(query.cluster) }
    const clause = where.length === 0 ? '' : `where ${where.join(' and ')}`
    const total = Number((await db(`select count(*)::int as n from tenants t ${clause}`, params))[0]?.n ?? 0)
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE))
    const page = Math.min(query.page, pages)
    const rows = await db(`
      select t.key, t.identifier, t.name, t.status, t.created_at, c.name as cluster_name,
             coalesce((select string_agg(d.domain, ' ' order by d.is_primary desc, d.domain) from domains d where d.tenant_key = t.key), '') as domains
        from tenants t left join tenant_clusters c on c.id = t.tenant_cluster_id
        ${clause}
       order by ${SORT_COLUMNS[query.sort]} ${query.dir}, t.identifier
       limit ${PAGE_SIZE} offset ${(page - 1) * PAGE_SIZE}`, params)
    const sortLinks = Object.fromEntries((['identifier', 'name', 'status', 'created'] as const).map((s) => [s, listUrl(base, query, { sort: s, dir: query.sort === s && query.dir === 'asc' ? 'desc' : 'asc', page: 1 })]))
    return await renderPage(ctx, request, reply, 'tenants/index', 'Tenants', {
      query,
      clusters: await clusters(),
      tenants: rows.map((r) => ({ key: r.key, identifier: r.identifier, name: r.name, status: r.status, cluster: r.cluster_name, domains: String(r.domains).split(' ').filter(Boolean), created: new Date(r.created_at).toISOString().slice(0, 10) })),
      total,
      pageNumber: page,
      pages,
      sortLinks,
      prev: page > 1 ? listUrl(base, query, { page: page - 1 }) : null,
      next: page < pages ? listUrl(base, query, { page: page + 1 }) : null
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
    const row = (await db('select t.failure_reason, t.created_at, c.id as cluster_id, c.name as cluster_name from tenants t left join tenant_clusters c on c.id = t.tenant_cluster_id where t.key = ?', [tenant.key]))[0] ?? {}
    const domains = await db('select id, domain, is_primary from domains where tenant_key = ? order by is_primary desc, domain', [tenant.key])
    const users = await db('select u.global_id, u.name, u.email from tenant_users p join users u on u.global_id = p.global_user_id where p.tenant_key = ? order by u.name', [tenant.key])
    return await renderPage(ctx, request, reply, 'tenants/show', tenant.identifier, {
      tenant: { key: tenant.key, identifier: tenant.identifier, name: tenant.name, status: tenant.status, resourceKey: tenant.resourceKey, failureReason: row.failure_reason, created: row.created_at },
      cluster: row.cluster_id == null ? null : { id: row.cluster_id, name: row.cluster_name },
      database: { name: target.name, host: target.host, schema: target.schema },
      migrations,
      migrationsError,
      domains: domains.map((d) => ({ id: d.id, domain: d.domain, primary: d.is_primary })),
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

  app.post('/tenants/:key/domains', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const domain = field(request.body, 'domain').slice(0, 300)
    try {
      checkDomain(domain, tenancyRuntime(tenancy).options.centralDomains)
      await db('insert into domains (domain, tenant_key, is_primary) values (?, ?, not exists (select 1 from domains where tenant_key = ?))', [domain, tenant.key, tenant.key])
    } catch (error) {
      const message = (error as { code?: string }).code === '23505' ? `The domain "${domain}" belongs to another tenant already.` : userError(error)
      if (message === null) throw error
      return await back(request, reply, tenant, 'error', message)
    }
    tenancy.invalidate()
    return await back(request, reply, tenant, 'success', `Domain ${domain} added.`)
  })

  app.post('/tenants/:key/domains/:id/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const id = Number((request.params as { id: string }).id)
    const removed = Number.isInteger(id) ? await db('delete from domains where id = ? and tenant_key = ? returning domain', [id, tenant.key]) : []
    tenancy.invalidate()
    return await back(request, reply, tenant, removed.length === 1 ? 'success' : 'error', removed.length === 1 ? `Domain ${String(removed[0]?.domain)} removed.` : 'That domain is not this tenant\'s.')
  })

  app.post('/tenants/:key/domains/:id/primary', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const id = Number((request.params as { id: string }).id)
    const rows = Number.isInteger(id) ? await db('update domains set is_primary = (id = ?) where tenant_key = ? and exists (select 1 from domains where id = ? and tenant_key = ?) returning domain, is_primary', [id, tenant.key, id, tenant.key]) : []
    const primary = rows.find((r) => r.is_primary === true)
    tenancy.invalidate()
    return await back(request, reply, tenant, primary === undefined ? 'error' : 'success', primary === undefined ? 'That domain is not this tenant\'s.' : `${String(primary.domain)} is now the primary domain.`)
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
    await db('update tenants set status = ?, updated_at = now() where key = ?', [wanted, tenant.key])
    tenancy.invalidate()
    return await back(request, reply, tenant, 'success', wanted === 'suspended' ? `Tenant ${tenant.identifier} suspended: its requests get 403.` : `Tenant ${tenant.identifier} is active again.`)
  })

  app.get('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const cluster = (await db('select tenant_cluster_id from tenants where key = ?', [tenant.key]))[0]?.tenant_cluster_id ?? ''
    return await formPage(request, reply, { identifier: tenant.identifier, name: tenant.name, domains: '', cluster }, {}, tenant)
  })

  app.post('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const errors: FieldErrors = {}
    const values = readTenantForm(request.body, tenancyRuntime(tenancy).options.centralDomains, errors, false)
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, tenant, 422)
    try {
      await db('update tenants set identifier = ?, name = ?, updated_at = now() where key = ?', [values.identifier, values.name, tenant.key])
    } catch (error) {
      if ((error as { code?: string }).code !== '23505') throw error
      errors.identifier = `The identifier "${values.identifier}" is taken by another tenant; choose another.`
      return await formPage(request, reply, values, errors, tenant, 422)
    }
    tenancy.invalidate()
    try {
      await tenancy.clusters.move(tenant.key, values.cluster === '' ? null : values.cluster)
    } catch (error) {
      const message = userError(error)
      if (message === null) throw error
      return await back(request, reply, tenant, 'error', `Saved, but the cluster was not changed: ${message}`)
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
