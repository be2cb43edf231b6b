import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { confirmPage } from '../ui/confirm.js'
import { field, fields, hasErrors, type FieldErrors } from '../ui/forms.js'
import { UUID_PATTERN, type Tenant } from '../../tenant.js'
import type { TenantListing } from '../../lifecycle/tenant-listings.js'
import { listFilters, listUrl, readListQuery } from './list-query.js'
import { readTenantForm, type TenantFormValues } from './tenant-form.js'
import { tenantCopies } from './tenant-copies.js'
import { tenantOperationsView } from './operations.js'
import { tenantMovesView } from '../moves/tenant-moves-view.js'
import { LIST_PAGE_SIZE, pageOf, paging, readListParams, sortHeaders } from '../ui/list-view.js'
import { PICKER_SIZE, pickerCount, pickerJson, readFind } from '../ui/picker.js'
import { UserQueries } from '../users/user-queries.js'
import { changeLines } from '../audit/change-view.js'

const when = (date: Date): string => date.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'

const ADMIN = { admin: 'manage_tenants' as const }
const BULK_ACTIONS = ['suspend', 'activate', 'migrate', 'attach'] as const
type BulkAction = typeof BULK_ACTIONS[number]

/** Errors a user can fix: shown as a message, never as a 500. */
function userError (error: unknown): string | null {
  const code = String((error as { code?: string }).code ?? '')
  return code.startsWith('FST_TENANCY_') && code !== 'FST_TENANCY_MISCONFIGURED' ? (error as Error).message : null
}

/** The form field a refusal of the core belongs to. */
function fieldOf (code: string): 'identifier' | 'name' | 'domains' | 'cluster' {
  if (code === 'FST_TENANCY_DOMAIN_TAKEN' || code === 'FST_TENANCY_INVALID_DOMAIN') return 'domains'
  if (code.startsWith('FST_TENANCY_CLUSTER')) return 'cluster'
  return 'identifier'
}

/**
 * The Tenants area: list (search, sort, paging, bulk actions), create, a
 * tenant's page with its domains, database, migrations, users and their
 * copies in the tenant's own database, edit and delete. Every change goes
 * through the core's public API and is recorded in the audit log. Without
 * `manage_tenant_groups`, no cluster is shown and no form can change one.
 */
export function tenantRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/tenants`
  const users = new UserQueries(tenancy.orm)
  /** "for the next 90 days": how long a removed domain keeps redirecting. */
  const keptFor = (): string => {
    const days = ctx.renamesKeepMs / 86_400_000
    return days >= 1 ? `for the next ${Math.round(days)} day(s)` : `for the next ${Math.max(1, Math.round(ctx.renamesKeepMs / 60_000))} minute(s)`
  }
  const centralDomains = (): readonly string[] => ctx.centralDomains
  const canClusters = (request: FastifyRequest): boolean => request.admin?.permissions.has('manage_tenant_groups') === true
  const clusters = async (request: FastifyRequest): Promise<Array<{ id: string, name: string }>> =>
    canClusters(request) ? (await tenancy.clusters.list()).map((c) => ({ id: c.id, name: c.name })) : []
  const listing = async (key: string): Promise<Awaited<ReturnType<typeof tenancy.tenants.list>>['tenants'][number] | null> =>
    (await tenancy.tenants.list({ keys: [key] })).tenants[0] ?? null

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Tenant | null> => {
    const key = (request.params as { key: string }).key
    // The listing is the tenant with its cluster and domains, read in one statement.
    const tenant = UUID_PATTERN.test(key) ? await listing(key) : null
    if (tenant === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return tenant
  }
  const who = (t: Pick<Tenant, 'key' | 'identifier'>): { key: string, identifier: string } => ({ key: t.key, identifier: t.identifier })

  app.get('/tenants', { config: ADMIN }, async (request, reply) => {
    const query = readListQuery(request.query)
    const clusterView = canClusters(request)
    if (!clusterView) query.cluster = ''
    const filters = {
      search: query.q === '' ? undefined : query.q,
      status: query.status === '' ? undefined : query.status,
      clusterId: query.cluster === '' ? undefined : query.cluster === 'none' ? null : query.cluster,
      sort: query.sort,
      dir: query.dir,
      limit: LIST_PAGE_SIZE
    }
    let { total, tenants } = await tenancy.tenants.list({ ...filters, offset: (query.page - 1) * LIST_PAGE_SIZE })
    const pages = Math.max(1, Math.ceil(total / LIST_PAGE_SIZE))
    const page = Math.min(query.page, pages)
    // A page past the end (the list shrank, or a hand-made link) shows the last one.
    if (page < query.page && total > 0) ({ total, tenants } = await tenancy.tenants.list({ ...filters, offset: (page - 1) * LIST_PAGE_SIZE }))
    const extra = listFilters(query)
    const filtered = query.q !== '' || query.status !== '' || query.cluster !== ''
    // "No tenants yet" or "none match": only an empty filtered list needs to ask.
    const any = total > 0 || (filtered && (await tenancy.tenants.counts()).total > 0)
    return await renderPage(ctx, request, reply, 'tenants/index', 'Tenants', {
      query,
      clusterView,
      canImport: request.admin?.permissions.has('move_tenants') === true,
      clusters: await clusters(request),
      any,
      tenants: tenants.map((t) => ({
        key: t.key,
        identifier: t.identifier,
        name: t.name,
        status: t.status,
        cluster: clusterView ? t.cluster : null,
        domains: t.domains,
        created: t.createdAt.toISOString().slice(0, 10)
      })),
      total,
      pageNumber: page,
      pages,
      headers: sortHeaders(base, { q: query.q, sort: query.sort, dir: query.dir, page }, [['identifier', 'Identifier'], ['name', 'Name'], ['status', 'Status'], ['created', 'Created']], 'identifier', extra),
      prev: page > 1 ? listUrl(base, query, { page: page - 1 }) : null,
      next: page < pages ? listUrl(base, query, { page: page + 1 }) : null,
      back: listUrl(base, query, {})
    })
  })

  // Bulk actions: the list's checkboxes post here; the first post asks, the confirmed one acts.
  app.post('/tenants/bulk', { config: ADMIN }, async (request, reply) => {
    const action = field(request.body, 'action') as BulkAction
    const keys = [...new Set(fields(request.body, 'tenants').flatMap((v) => v.split(/\s+/)).filter((k) => UUID_PATTERN.test(k)))].slice(0, 500)
    const back = field(request.body, 'back').startsWith(base) ? field(request.body, 'back') : base
    if (!BULK_ACTIONS.includes(action)) return await redirectWith(ctx, request, reply, back, { type: 'error', text: 'Choose an action for the selected tenants.' })
    if (action === 'attach' && !canClusters(request)) return await renderPage(ctx, request, reply, 'error', 'Not allowed', { message: 'Attaching to a Tenant Cluster needs the manage_tenant_groups permission.' }, 403)
    const chosen = keys.length === 0 ? [] : (await tenancy.tenants.list({ keys })).tenants
    if (chosen.length === 0) return await redirectWith(ctx, request, reply, back, { type: 'error', text: 'Select at least one tenant first.' })
    const clusterId = field(request.body, 'cluster')
    const cluster = action === 'attach' ? (UUID_PATTERN.test(clusterId) ? await tenancy.clusters.find(clusterId) : null) : null
    if (action === 'attach' && cluster === null) return await redirectWith(ctx, request, reply, back, { type: 'error', text: 'Choose the Tenant Cluster to attach the selected tenants to.' })
    const names = chosen.map((t) => t.identifier).join(', ')
    if (field(request.body, 'confirmed') !== 'yes') {
      const what: Record<BulkAction, [string, string]> = {
        suspend: [`Suspend ${chosen.length} tenant(s)?`, `${names} will answer 403 to every request until activated again. Their data stays.`],
        activate: [`Activate ${chosen.length} tenant(s)?`, `${names} will serve requests again.`],
        migrate: [`Migrate ${chosen.length} tenant(s)?`, `Pending migrations run in the databases of ${names}.`],
        attach: [`Attach ${chosen.length} tenant(s) to "${cluster?.name ?? ''}"?`, `${names} move to "${cluster?.name ?? ''}"${cluster?.parentTenantId == null ? `; ${chosen[0]?.identifier ?? ''} becomes its Parent Tenant` : ''}. A tenant that is the Parent Tenant of another Tenant Cluster with other tenants is refused.`]
      }
      return await confirmPage(ctx, request, reply, {
        question: what[action][0],
        consequence: what[action][1],
        action: `${base}/bulk`,
        fields: { action, back, confirmed: 'yes', cluster: clusterId, tenants: chosen.map((t) => t.key).join(' ') },
        confirmLabel: what[action][0].replace(/\?$/, ''),
        cancel: back,
        danger: action === 'suspend',
        busy: { suspend: 'Suspending', activate: 'Activating', migrate: 'Migrating', attach: 'Attaching' }[action] + ` ${chosen.length} tenant(s)…`
      })
    }
    const done: string[] = []
    const refused: string[] = []
    for (const tenant of chosen) {
      try {
        // suspend and activate refuse a tenant in the wrong status themselves (FST_TENANCY_STATUS_TRANSITION).
        if (action === 'suspend') await tenancy.suspend(tenant)
        if (action === 'activate') await tenancy.activate(tenant)
        if (action === 'migrate') {
          const [r] = await tenancy.migrate({ tenants: [tenant.key] })
          if (r === undefined || !r.ok) { refused.push(`${tenant.identifier} (${r?.error ?? 'the migration failed'})`); continue }
        }
        if (action === 'attach' && cluster !== null) await tenancy.clusters.move(tenant.key, cluster.id)
        done.push(tenant.identifier)
        await ctx.audit.recordFor(request, action === 'attach' ? 'cluster.attach' : `tenant.${action}`, { tenant: who(tenant), cluster: cluster === null ? null : { id: cluster.id, name: cluster.name }, change: { bulk: true } })
      } catch (error) {
        refused.push(`${tenant.identifier} (${userError(error) ?? (error as Error).message})`)
      }
    }
    const verb: Record<BulkAction, string> = { suspend: 'Suspended', activate: 'Activated', migrate: 'Migrated', attach: `Attached to "${cluster?.name ?? ''}"` }
    const text = `${verb[action]}: ${done.length === 0 ? 'none' : done.join(', ')}.${refused.length === 0 ? '' : ` Not done: ${refused.join('; ')}.`}`
    return await redirectWith(ctx, request, reply, back, { type: refused.length === 0 ? 'success' : 'error', text })
  })

  const formPage = async (
    request: FastifyRequest, reply: FastifyReply, values: TenantFormValues, errors: FieldErrors, tenant: Tenant | null, status = 200
  ): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'tenants/form', tenant === null ? 'New tenant' : `Edit ${tenant.identifier}`, { values, errors, tenant, clusterView: canClusters(request), clusters: await clusters(request), action: tenant === null ? `${base}/new` : `${base}/${tenant.key}/edit` }, status)

  app.get('/tenants/new', { config: ADMIN }, async (request, reply) => {
    return await formPage(request, reply, { identifier: '', name: '', domains: '', cluster: '' }, {}, null)
  })

  app.post('/tenants/new', { config: ADMIN }, async (request, reply) => {
    const errors: FieldErrors = {}
    const values = readTenantForm(request.body, centralDomains(), errors, true)
    // Without manage_tenant_groups the form has no cluster, and a posted one is not taken.
    if (!canClusters(request)) values.cluster = ''
    if (values.cluster !== '' && errors.cluster === undefined && await tenancy.clusters.find(values.cluster) === null) errors.cluster = 'That Tenant Cluster no longer exists; choose another.'
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, null, 422)
    let tenant: Tenant
    try {
      tenant = await tenancy.create({ identifier: values.identifier, name: values.name, domains: values.domainList })
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (code === 'FST_TENANCY_PROVISIONING_FAILED') {
        const failed = await tenancy.tenants.find(values.identifier)
        if (failed !== null) return await redirectWith(ctx, request, reply, `${base}/${failed.key}`, { type: 'error', text: (error as Error).message })
      }
      const message = userError(error)
      if (message === null) throw error
      errors[fieldOf(code)] = message
      return await formPage(request, reply, values, errors, null, 422)
    }
    let joined = ''
    if (values.cluster !== '') {
      // A new tenant joining a cluster never breaks its rule; it only becomes the parent of an empty one.
      tenant = await tenancy.update(tenant, { clusterId: values.cluster })
      joined = ' It joined the Tenant Cluster.'
    }
    await ctx.audit.recordFor(request, 'tenant.create', { tenant: who(tenant), change: { identifier: tenant.identifier, name: tenant.name, domains: values.domainList, ...(values.cluster === '' ? {} : { clusterId: values.cluster }) } })
    return await redirectWith(ctx, request, reply, `${base}/${tenant.key}`, { type: 'success', text: `Tenant ${tenant.identifier} created with its own database.${joined}` })
  })

  const TABS = ['overview', 'domains', 'users'] as const
  type Tab = typeof TABS[number]

  /** What the Overview tab shows of migrations: the recorded state, read live only for a tenant never seen yet. */
  const migrationsOf = async (tenant: Tenant): Promise<{ executed: string[], pending: string[], error: string | null, checked: string | null } | null> => {
    if (tenant.status !== 'active' && tenant.status !== 'suspended') return null
    const state = (await tenancy.migrationStates([tenant.key])).get(tenant.key)
    if (state !== undefined) return { executed: state.executed, pending: state.pending, error: state.error === null ? null : 'The tenant database could not be read when last checked.', checked: when(state.checkedAt) }
    try {
      const live = await tenancy.migrationStatus(tenant)
      return { ...live, error: null, checked: 'just now' }
    } catch {
      return { executed: [], pending: [], error: 'The tenant database cannot be reached right now.', checked: 'just now' }
    }
  }

  app.get('/tenants/:key', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const rawTab = (request.query as { tab?: string }).tab
    const tab: Tab = (TABS as readonly string[]).includes(rawTab ?? '') ? rawTab as Tab : 'overview'
    const url = `${base}/${tenant.key}`
    const clusterView = canClusters(request)
    const row = tenant as TenantListing
    const domains = await tenancy.domains.list(tenant)
    const userCount = await users.countOfTenant(tenant.key)
    const model: Record<string, unknown> = {
      tab,
      tabs: [
        { href: url, label: 'Overview', current: tab === 'overview' },
        { href: `${url}?tab=domains`, label: 'Domains', current: tab === 'domains', count: domains.length },
        { href: `${url}?tab=users`, label: 'Users', current: tab === 'users', count: userCount }
      ],
      tenant: {
        key: tenant.key,
        identifier: tenant.identifier,
        name: tenant.name,
        status: tenant.status,
        resourceKey: tenant.resourceKey,
        failureReason: row?.failureReason ?? null,
        created: row?.createdAt ?? null
      },
      primaryDomain: domains.find((d) => d.primary)?.domain ?? null,
      clusterView,
      cluster: clusterView ? row?.cluster ?? null : null,
      operations: await tenantOperationsView(ctx, request, tenant),
      moves: await tenantMovesView(ctx, request, tenant),
      // Provisioning takes milliseconds; the page looks again until it is done.
      refresh: tenant.status === 'provisioning',
      refreshMain: true
    }
    if (tab === 'overview') {
      const target = tenancy.tenants.target(tenant)
      // Without manage_tenant_groups, no cluster.* entry: the same rule as the audit log.
      const history = await ctx.audit.list({ tenantKey: tenant.key, pageSize: 10, withClusters: clusterView })
      Object.assign(model, {
        database: { name: target.name, host: target.host, schema: target.schema },
        migrations: await migrationsOf(tenant),
        history: history.entries.map((e) => ({ at: e.at.toISOString().slice(0, 16).replace('T', ' '), actor: e.actorEmail, action: e.action, change: changeLines(e.change) }))
      })
    }
    if (tab === 'domains') {
      const params = readListParams(request.query, ['domain'] as const, 'domain')
      const { rows, paging } = pageOf(domains.map((d) => ({ id: d.id, domain: d.domain, primary: d.primary })), params, (d) => d.domain, (d) => d.domain, url, 'domain', { tab: 'domains' })
      Object.assign(model, { params, domains: rows, paging, anyDomains: domains.length > 0 })
    }
    if (tab === 'users') {
      const params = readListParams(request.query, ['name'] as const, 'name')
      const find = readFind(request.query)
      const extra = { tab: 'users', find }
      const list = async (page: number): Promise<Awaited<ReturnType<typeof users.ofTenant>>> =>
        await users.ofTenant(tenant.key, { q: params.q, limit: LIST_PAGE_SIZE, offset: (page - 1) * LIST_PAGE_SIZE })
      let attached = await list(params.page)
      const p = paging(url, params, attached.total, 'name', extra)
      if (p.pageNumber < params.page && attached.total > 0) attached = await list(p.pageNumber)
      const synced = tenancy.sync?.resources.has('users') === true
      const candidates = synced ? await users.notInTenant(tenant.key, find, PICKER_SIZE) : { total: 0, rows: [] }
      Object.assign(model, {
        params,
        users: attached.rows,
        paging: p,
        copies: tenant.status === 'active' || tenant.status === 'suspended' ? await tenantCopies(tenancy, tenant) : [],
        canUsers: request.admin?.permissions.has('manage_users') === true,
        picker: synced && tenant.status === 'active' && request.admin?.permissions.has('manage_users') === true
          ? {
              id: 'attach-users',
              heading: 'Attach users',
              label: 'Find users to attach',
              legend: 'Users to attach',
              placeholder: 'Name or email',
              name: 'users',
              source: `${url}/user-candidates`,
              searchAction: url,
              keep: { tab: 'users', q: params.q },
              find,
              postAction: `${url}/users`,
              submitLabel: 'Attach',
              options: candidates.rows.map((u) => ({ value: u.globalId, label: `${u.name} — ${u.email}` })),
              countText: pickerCount(candidates.rows.length, candidates.total, find, 'users')
            }
          : null
      })
    }
    return await renderPage(ctx, request, reply, 'tenants/show', tenant.identifier, model)
  })

  // The users picker's type-ahead.
  app.get('/tenants/:key/user-candidates', { config: { admin: 'manage_users' } }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const find = readFind(request.query)
    const { total, rows } = await users.notInTenant(tenant.key, find, PICKER_SIZE)
    return pickerJson(rows.map((u) => ({ value: u.globalId, label: `${u.name} — ${u.email}` })), total, find, 'users')
  })

  // Attaches users to the tenant from its Users tab (copies them into its database).
  app.post('/tenants/:key/users', { config: { admin: 'manage_users' } }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const url = `${base}/${tenant.key}?tab=users`
    if (tenancy.sync?.resources.has('users') !== true) return await back(request, reply, tenant, 'error', 'Resource syncing of users is not configured.')
    const chosen = [...new Set(fields(request.body, 'users'))].slice(0, 100)
    const found = (await Promise.all(chosen.map(async (id) => await users.find(id)))).filter((u) => u !== null)
    if (found.length === 0) return await redirectWith(ctx, request, reply, url, { type: 'error', text: 'Choose at least one user to attach.' })
    for (const user of found) {
      await tenancy.sync.attach('users', user.globalId, tenant)
      await ctx.audit.recordFor(request, 'user.attach', { tenant: who(tenant), change: { globalId: user.globalId, name: user.name } })
    }
    return await redirectWith(ctx, request, reply, url, { type: 'success', text: `Attached ${found.map((u) => u.name).join(', ')} to ${tenant.identifier}: copied into its database.` })
  })

  // Reads the tenant database's migrations now (the page shows what was last recorded).
  app.post('/tenants/:key/migrations/check', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    try {
      const status = await tenancy.migrationStatus(tenant)
      return await back(request, reply, tenant, 'success', status.pending.length === 0 ? `${tenant.identifier} is up to date (${status.executed.length} migration(s) ran).` : `${tenant.identifier} has ${status.pending.length} pending migration(s): ${status.pending.join(', ')}.`)
    } catch (error) {
      return await back(request, reply, tenant, 'error', `The tenant database cannot be read: ${(error as Error).message}`)
    }
  })

  const back = async (request: FastifyRequest, reply: FastifyReply, tenant: Tenant, type: 'success' | 'error', text: string, tab: Tab = 'overview'): Promise<FastifyReply> =>
    await redirectWith(ctx, request, reply, `${base}/${tenant.key}${tab === 'overview' ? '' : `?tab=${tab}`}`, { type, text })

  /** The tenant's domain with the id in the URL, or null. */
  const domainOf = async (request: FastifyRequest, tenant: Tenant): Promise<{ id: number, domain: string, primary: boolean } | null> => {
    const id = Number((request.params as { id: string }).id)
    return (await tenancy.domains.list(tenant)).find((d) => d.id === id) ?? null
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
      return await back(request, reply, tenant, 'error', message, 'domains')
    }
    await ctx.audit.recordFor(request, 'tenant.domain.add', { tenant: who(tenant), change: { domain } })
    return await back(request, reply, tenant, 'success', `Domain ${domain} added.`, 'domains')
  })

  app.get('/tenants/:key/domains/:id/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const domain = await domainOf(request, tenant)
    if (domain === null) return await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'That domain is not this tenant\'s.' }, 404)
    return await confirmPage(ctx, request, reply, {
      question: `Remove ${domain.domain} from ${tenant.identifier}?`,
      consequence: `Requests to ${domain.domain} will no longer reach ${tenant.identifier} there: ${ctx.renamesKeepMs === 0 ? 'they answer 404 at once' : `${keptFor()} they are redirected (301) to ${tenant.identifier}'s primary domain (or its subdomain), then answer 404, and no other tenant can take it meanwhile`}.${domain.primary ? ' It is the primary domain: another domain becomes primary.' : ''}`,
      action: `${base}/${tenant.key}/domains/${domain.id}/delete`,
      confirmLabel: `Remove ${domain.domain}`,
      cancel: `${base}/${tenant.key}?tab=domains`,
      danger: true
    })
  })

  app.post('/tenants/:key/domains/:id/delete', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const domain = await domainOf(request, tenant)
    if (domain === null) return await back(request, reply, tenant, 'error', 'That domain is not this tenant\'s.', 'domains')
    await tenancy.domains.remove(tenant, domain.domain)
    await ctx.audit.recordFor(request, 'tenant.domain.remove', { tenant: who(tenant), change: { domain: domain.domain } })
    return await back(request, reply, tenant, 'success', `Domain ${domain.domain} removed.`, 'domains')
  })

  app.post('/tenants/:key/domains/:id/primary', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const domain = await domainOf(request, tenant)
    if (domain === null) return await back(request, reply, tenant, 'error', 'That domain is not this tenant\'s.', 'domains')
    await tenancy.domains.makePrimary(tenant, domain.domain)
    await ctx.audit.recordFor(request, 'tenant.domain.primary', { tenant: who(tenant), change: { domain: domain.domain } })
    return await back(request, reply, tenant, 'success', `${domain.domain} is now the primary domain.`, 'domains')
  })

  app.post('/tenants/:key/migrate', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const [result] = await tenancy.migrate({ tenants: [tenant.key] })
    await ctx.audit.recordFor(request, 'tenant.migrate', { tenant: who(tenant), change: { ok: result?.ok === true, migrations: result?.migrations ?? [], error: result?.error ?? null } })
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
    await ctx.audit.recordFor(request, 'tenant.provision', { tenant: who(tenant) })
    return await back(request, reply, tenant, 'success', `Tenant ${tenant.identifier} provisioned and active.`)
  })

  app.get('/tenants/:key/status', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const suspend = tenant.status === 'active'
    if (!suspend && tenant.status !== 'suspended') return await back(request, reply, tenant, 'error', 'Only an active tenant can be suspended, and only a suspended one reactivated.')
    return await confirmPage(ctx, request, reply, {
      question: suspend ? `Suspend ${tenant.identifier}?` : `Reactivate ${tenant.identifier}?`,
      consequence: suspend
        ? `Every request to ${tenant.identifier} will get 403 until it is reactivated. Its database, domains and users stay.`
        : `${tenant.identifier} will serve requests again.`,
      action: `${base}/${tenant.key}/status`,
      fields: { status: suspend ? 'suspended' : 'active' },
      confirmLabel: suspend ? `Suspend ${tenant.identifier}` : `Reactivate ${tenant.identifier}`,
      cancel: `${base}/${tenant.key}`,
      danger: suspend
    })
  })

  app.post('/tenants/:key/status', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const wanted = field(request.body, 'status')
    if (!((tenant.status === 'active' && wanted === 'suspended') || (tenant.status === 'suspended' && wanted === 'active'))) {
      return await back(request, reply, tenant, 'error', 'Only an active tenant can be suspended, and only a suspended one reactivated.')
    }
    if (wanted === 'suspended') await tenancy.suspend(tenant)
    else await tenancy.activate(tenant)
    await ctx.audit.recordFor(request, wanted === 'suspended' ? 'tenant.suspend' : 'tenant.activate', { tenant: who(tenant), change: { status: { from: tenant.status, to: wanted } } })
    return await back(request, reply, tenant, 'success', wanted === 'suspended' ? `Tenant ${tenant.identifier} suspended: its requests get 403.` : `Tenant ${tenant.identifier} is active again.`)
  })

  app.get('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const row = await listing(tenant.key)
    const cluster = canClusters(request) ? row?.cluster?.id ?? '' : ''
    return await formPage(request, reply, { identifier: tenant.identifier, name: tenant.name, domains: '', cluster, was: { identifier: tenant.identifier, name: tenant.name, cluster } }, {}, tenant)
  })

  app.post('/tenants/:key/edit', { config: ADMIN }, async (request, reply) => {
    const tenant = await load(request, reply)
    if (tenant === null) return reply
    const errors: FieldErrors = {}
    const values = readTenantForm(request.body, centralDomains(), errors, false)
    // What the form was opened with: only the fields this form changed are saved, so a stale form never undoes another session's save.
    const was = field(request.body, 'was_identifier') === '' ? null : { identifier: field(request.body, 'was_identifier'), name: field(request.body, 'was_name'), cluster: field(request.body, 'was_cluster') }
    if (was !== null) values.was = was
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, tenant, 422)
    const before = await listing(tenant.key)
    const fromCluster = before?.cluster?.id ?? null
    const current = { identifier: tenant.identifier, name: tenant.name, cluster: fromCluster ?? '' }
    const fields: Array<'identifier' | 'name' | 'cluster'> = canClusters(request) ? ['identifier', 'name', 'cluster'] : ['identifier', 'name']
    const touched = fields.filter((f) => was === null || values[f] !== was[f])
    // Changed here and, since the form was opened, elsewhere too: the other save is shown, not overwritten.
    for (const f of touched) {
      if (was !== null && current[f] !== was[f] && values[f] !== current[f]) errors[f] = `Changed by someone else since you opened this form${f === 'cluster' ? '' : ` (now "${current[f]}")`}; check it and save again.`
    }
    if (hasErrors(errors)) {
      const refreshed = Object.fromEntries(touched.filter((f) => errors[f] !== undefined).map((f) => [f, current[f]]))
      return await formPage(request, reply, { ...values, ...refreshed, was: current }, errors, tenant, 409)
    }
    // All or nothing: a refused change (taken identifier, cluster rule) saves no field and shows the form again with the reason on its field.
    const changes: { identifier?: string, name?: string, clusterId?: string | null } = {}
    if (touched.includes('identifier')) changes.identifier = values.identifier
    if (touched.includes('name')) changes.name = values.name
    if (touched.includes('cluster')) changes.clusterId = values.cluster === '' ? null : values.cluster
    if (Object.keys(changes).length === 0) return await back(request, reply, tenant, 'success', 'Nothing to save: the form has no change.')
    try {
      await tenancy.update(tenant, changes)
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      const message = userError(error)
      if (message === null) throw error
      errors[fieldOf(code)] = message
      return await formPage(request, reply, values, errors, tenant, 422)
    }
    const change: Record<string, unknown> = {}
    const identifier = changes.identifier ?? tenant.identifier
    if (identifier !== tenant.identifier) change.identifier = { from: tenant.identifier, to: identifier }
    if (changes.name !== undefined && changes.name !== tenant.name) change.name = { from: tenant.name, to: changes.name }
    if ('clusterId' in changes && changes.clusterId !== fromCluster) change.clusterId = { from: fromCluster, to: changes.clusterId }
    await ctx.audit.recordFor(request, 'tenant.update', { tenant: { key: tenant.key, identifier }, change })
    const renamed = identifier !== tenant.identifier ? ` Its identifier is now ${identifier}: its subdomain and URLs changed.` : ''
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
    await ctx.audit.recordFor(request, 'tenant.delete', { tenant: who(tenant) })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Tenant ${tenant.identifier} and its database were deleted.` })
  })
}
