import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { confirmPage } from '../ui/confirm.js'
import { LIST_PAGE_SIZE, pageOf, paging, readListParams, sortHeaders } from '../ui/list-view.js'
import { PICKER_SIZE, pickerJson, readFind, type PickerOption, tenantAttachPicker } from '../ui/picker.js'
import type { TenantListing } from '../../lifecycle/tenant-listings.js'
import { check, field, fields, hasErrors, type FieldErrors } from '../ui/forms.js'
import { UUID_PATTERN } from '../../tenant.js'
import type { ClusterRow } from '../../clusters/tenant-clusters.js'
import { ClusterRuleError } from '../../errors.js'

const ADMIN = { admin: 'manage_tenant_groups' as const }
const SORTS = ['name', 'tenants', 'parent'] as const
const MEMBER_SORTS = ['identifier', 'name', 'status'] as const

interface ClusterForm {
  name: string
  description: string
}

function readForm (body: unknown, errors: FieldErrors): ClusterForm {
  return {
    name: check(errors, 'name', field(body, 'name'), { label: 'Name', required: true, max: 255 }),
    description: check(errors, 'description', field(body, 'description'), { label: 'Description', max: 2000 })
  }
}

/** A refusal by the cluster rule (or a vanished tenant) becomes a notice; anything else is a real error. */
function refusal (error: unknown): string | null {
  const code = (error as { code?: string }).code
  return code === 'FST_TENANCY_CLUSTER_RULE' || code === 'FST_TENANCY_TENANT_NOT_FOUND' || code === 'FST_TENANCY_CLUSTER_NOT_FOUND'
    ? (error as Error).message
    : null
}

/** The "Tenant Groups" area: tenant clusters and their Parent Tenant. */
export function clusterRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const clusters = ctx.tenancy.clusters
  const base = `${ctx.prefix}/clusters`

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<ClusterRow | null> => {
    const id = (request.params as { id: string }).id
    const cluster = UUID_PATTERN.test(id) ? await clusters.find(id) : null
    if (cluster === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such Tenant Cluster.' }, 404)
    return cluster
  }

  const crumbs = (cluster: ClusterRow, page?: string): Array<{ label: string, href: string | null }> => [
    { label: 'Dashboard', href: ctx.prefix },
    { label: 'Tenant Clusters', href: base },
    ...(page === undefined ? [{ label: cluster.name, href: null }] : [{ label: cluster.name, href: `${base}/${cluster.id}` }, { label: page, href: null }])
  ]

  app.get('/clusters', { config: ADMIN }, async (request, reply) => {
    const params = readListParams(request.query, SORTS, 'name')
    const all = await clusters.list()
    const { rows, paging } = pageOf(all, params, (c) => `${c.name} ${c.slug} ${c.description ?? ''} ${c.parentIdentifier ?? ''}`,
      (c, sort) => sort === 'tenants' ? c.tenants : sort === 'parent' ? c.parentIdentifier ?? '' : c.name.toLowerCase(), base, 'name')
    return await renderPage(ctx, request, reply, 'clusters/index', 'Tenant Clusters', {
      clusters: rows,
      any: all.length > 0,
      params,
      paging,
      headers: sortHeaders(base, params, [['name', 'Name'], ['tenants', 'Tenants'], ['parent', 'Parent Tenant']], 'name')
    })
  })

  app.get('/clusters/new', { config: ADMIN }, async (request, reply) => {
    return await renderPage(ctx, request, reply, 'clusters/form', 'New Tenant Cluster', { values: { name: '', description: '' }, errors: {}, action: `${base}/new`, cluster: null })
  })

  app.post('/clusters/new', { config: ADMIN }, async (request, reply) => {
    const errors: FieldErrors = {}
    const values = readForm(request.body, errors)
    if (hasErrors(errors)) return await renderPage(ctx, request, reply, 'clusters/form', 'New Tenant Cluster', { values, errors, action: `${base}/new`, cluster: null }, 422)
    let cluster: ClusterRow
    try {
      cluster = await clusters.create({ name: values.name, description: values.description === '' ? null : values.description })
    } catch (error) {
      if ((error as { code?: string }).code !== 'FST_TENANCY_CLUSTER_NAME_TAKEN') throw error
      errors.name = (error as Error).message
      return await renderPage(ctx, request, reply, 'clusters/form', 'New Tenant Cluster', { values, errors, action: `${base}/new`, cluster: null }, 409)
    }
    await ctx.audit.recordFor(request, 'cluster.create', { cluster: { id: cluster.id, name: cluster.name }, change: { name: cluster.name, description: cluster.description } })
    return await redirectWith(ctx, request, reply, `${base}/${cluster.id}`, { type: 'success', text: `Tenant Cluster "${cluster.name}" created, with the slug "${cluster.slug}".` })
  })

  /** "Attach Existing": tenants not in the cluster matching `find`, a few at a time. */
  const candidates = async (cluster: ClusterRow, find: string): Promise<{ total: number, options: PickerOption[] }> => {
    const { total, tenants } = await ctx.tenancy.tenants.list({ notInClusterId: cluster.id, search: find === '' ? undefined : find, limit: PICKER_SIZE })
    return {
      total,
      options: tenants.map((o) => ({ value: o.key, label: `${o.identifier} — ${o.name}`, hint: o.cluster === null ? null : `(now in ${o.cluster.name}; attaching moves it)` }))
    }
  }

  const memberRow = (cluster: ClusterRow, m: TenantListing): Record<string, unknown> =>
    ({ key: m.key, identifier: m.identifier, name: m.name, status: m.status, parent: m.key === cluster.parentTenantId })

  app.get('/clusters/:id', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const tab = (request.query as { tab?: string }).tab === 'details' ? 'details' : 'tenants'
    const url = `${base}/${cluster.id}`
    if (tab === 'details') return await renderPage(ctx, request, reply, 'clusters/show', cluster.name, { cluster, tab, crumbs: crumbs(cluster) })
    // The Tenants tab: the cluster's tenants searched, sorted and paged, and "Attach Existing" by search.
    const params = readListParams(request.query, MEMBER_SORTS, 'identifier')
    const find = readFind(request.query)
    const extra = { tab: '', find }
    const list = async (page: number): Promise<Awaited<ReturnType<typeof ctx.tenancy.tenants.list>>> =>
      await ctx.tenancy.tenants.list({ clusterId: cluster.id, search: params.q === '' ? undefined : params.q, sort: params.sort, dir: params.dir, limit: LIST_PAGE_SIZE, offset: (page - 1) * LIST_PAGE_SIZE })
    let { total, tenants } = await list(params.page)
    const p = paging(url, params, total, 'identifier', extra)
    if (p.pageNumber < params.page && total > 0) ({ total, tenants } = await list(p.pageNumber))
    const picker = await candidates(cluster, find)
    const parent = cluster.parentTenantId === null ? null : await ctx.tenancy.tenants.find(cluster.parentTenantId)
    return await renderPage(ctx, request, reply, 'clusters/show', cluster.name, {
      cluster,
      tab,
      crumbs: crumbs(cluster),
      parent: parent === null ? null : { key: parent.key, identifier: parent.identifier },
      params,
      members: tenants.map((m) => memberRow(cluster, m)),
      paging: p,
      headers: sortHeaders(url, params, [['identifier', 'Tenant'], ['name', 'Name'], ['status', 'Status']], 'identifier', extra),
      back: `${url}${request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''}`,
      picker: tenantAttachPicker(url, { heading: 'Attach Existing', label: 'Find tenants to attach', legend: 'Tenants to attach', noun: 'tenants' }, params.q, find, picker)
    })
  })

  // The picker's type-ahead: the same candidates as JSON.
  app.get('/clusters/:id/candidates', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const find = readFind(request.query)
    const { total, options } = await candidates(cluster, find)
    return pickerJson(options, total, find, 'tenants')
  })

  app.get('/clusters/:id/edit', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    return await renderPage(ctx, request, reply, 'clusters/form', `Edit ${cluster.name}`, { values: { name: cluster.name, description: cluster.description ?? '' }, errors: {}, action: `${base}/${cluster.id}/edit`, cluster })
  })

  app.post('/clusters/:id/edit', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const errors: FieldErrors = {}
    const values = readForm(request.body, errors)
    if (hasErrors(errors)) return await renderPage(ctx, request, reply, 'clusters/form', `Edit ${cluster.name}`, { values, errors, action: `${base}/${cluster.id}/edit`, cluster }, 422)
    let saved: ClusterRow
    try {
      saved = await clusters.update(cluster.id, { name: values.name, description: values.description === '' ? null : values.description })
    } catch (error) {
      if ((error as { code?: string }).code !== 'FST_TENANCY_CLUSTER_NAME_TAKEN') throw error
      errors.name = (error as Error).message
      return await renderPage(ctx, request, reply, 'clusters/form', `Edit ${cluster.name}`, { values, errors, action: `${base}/${cluster.id}/edit`, cluster }, 409)
    }
    await ctx.audit.recordFor(request, 'cluster.update', { cluster: { id: saved.id, name: saved.name }, change: { name: { from: cluster.name, to: saved.name }, description: { from: cluster.description, to: saved.description } } })
    return await redirectWith(ctx, request, reply, `${base}/${cluster.id}?tab=details`, { type: 'success', text: `Tenant Cluster "${saved.name}" saved (slug "${saved.slug}").` })
  })

  app.get('/clusters/:id/delete', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    return await renderPage(ctx, request, reply, 'clusters/delete', `Delete ${cluster.name}`, { cluster })
  })

  app.post('/clusters/:id/delete', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    await clusters.delete(cluster.id)
    await ctx.audit.recordFor(request, 'cluster.delete', { cluster: { id: cluster.id, name: cluster.name } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Tenant Cluster "${cluster.name}" deleted; its tenants now belong to no Tenant Cluster.` })
  })

  // Tenant changes: each answers with a notice, or with the rule's reason when it refuses.
  const change = async (request: FastifyRequest, reply: FastifyReply, fn: (cluster: ClusterRow) => Promise<string>): Promise<FastifyReply> => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    try {
      const text = await fn(cluster)
      return await redirectWith(ctx, request, reply, `${base}/${cluster.id}`, { type: 'success', text })
    } catch (error) {
      const reason = refusal(error)
      if (reason === null) throw error
      return await redirectWith(ctx, request, reply, `${base}/${cluster.id}`, { type: 'error', text: reason })
    }
  }

  const identifiers = async (keys: string[]): Promise<string> => {
    const { tenants } = await ctx.tenancy.tenants.list({ keys })
    return tenants.map((t) => t.identifier).join(', ')
  }

  app.post('/clusters/:id/attach', { config: ADMIN }, async (request, reply) => {
    return await change(request, reply, async (cluster) => {
      const keys = fields(request.body, 'tenants').filter((k) => UUID_PATTERN.test(k))
      if (keys.length === 0) throw new ClusterRuleError('Choose at least one tenant to attach.')
      await clusters.attach(cluster.id, keys)
      await ctx.audit.recordFor(request, 'cluster.attach', { cluster: { id: cluster.id, name: cluster.name }, change: { tenants: keys } })
      const after = await clusters.find(cluster.id)
      const parent = after?.parentTenantId != null && cluster.parentTenantId === null ? ` ${await identifiers([after.parentTenantId])} is its Parent Tenant.` : ''
      return `Attached ${await identifiers(keys)} to "${cluster.name}".${parent}`
    })
  })

  // Detach the selected tenants: the first post asks, the confirmed one acts (the Parent Tenant last, so it may leave with the others).
  app.post('/clusters/:id/detach', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const keys = [...new Set(fields(request.body, 'tenants').flatMap((v) => v.split(/\s+/)).filter((k) => UUID_PATTERN.test(k)))].slice(0, 500)
    const chosen = keys.length === 0 ? [] : (await ctx.tenancy.tenants.list({ keys, clusterId: cluster.id })).tenants
    const url = `${base}/${cluster.id}`
    if (chosen.length === 0) return await redirectWith(ctx, request, reply, url, { type: 'error', text: 'Select at least one tenant of this Tenant Cluster first.' })
    const names = chosen.map((t) => t.identifier).join(', ')
    if (field(request.body, 'confirmed') !== 'yes') {
      const parent = chosen.find((t) => t.key === cluster.parentTenantId)
      return await confirmPage(ctx, request, reply, {
        question: `Detach ${chosen.length} tenant(s) from "${cluster.name}"?`,
        consequence: `${names} will belong to no Tenant Cluster. Their data and domains stay as they are.${parent === undefined ? '' : ` ${parent.identifier} is the Parent Tenant: it can leave only with every other tenant.`}`,
        action: `${url}/detach`,
        fields: { confirmed: 'yes', tenants: chosen.map((t) => t.key).join(' ') },
        confirmLabel: `Detach ${chosen.length} tenant(s)`,
        cancel: url
      })
    }
    const ordered = [...chosen.filter((t) => t.key !== cluster.parentTenantId), ...chosen.filter((t) => t.key === cluster.parentTenantId)]
    const done: string[] = []
    const refused: string[] = []
    for (const tenant of ordered) {
      try {
        await clusters.detach(cluster.id, tenant.key)
        done.push(tenant.identifier)
        await ctx.audit.recordFor(request, 'cluster.detach', { cluster: { id: cluster.id, name: cluster.name }, tenant: { key: tenant.key, identifier: tenant.identifier }, change: { bulk: true } })
      } catch (error) {
        const reason = refusal(error)
        if (reason === null) throw error
        refused.push(`${tenant.identifier} (${reason})`)
      }
    }
    const text = `Detached from "${cluster.name}": ${done.length === 0 ? 'none' : done.join(', ')}.${refused.length === 0 ? '' : ` Not detached: ${refused.join('; ')}`}`
    return await redirectWith(ctx, request, reply, url, { type: refused.length === 0 ? 'success' : 'error', text })
  })

  /** A member of the cluster by its key from the URL, or null after answering 404. */
  const member = async (request: FastifyRequest, reply: FastifyReply, cluster: ClusterRow): Promise<{ key: string, identifier: string } | null> => {
    const key = (request.params as { tenant: string }).tenant
    const tenant = UUID_PATTERN.test(key) ? (await ctx.tenancy.tenants.list({ keys: [key], clusterId: cluster.id })).tenants[0] : undefined
    if (tenant === undefined) {
      await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'That tenant is not in this Tenant Cluster.' }, 404)
      return null
    }
    return { key: tenant.key, identifier: tenant.identifier }
  }

  app.get('/clusters/:id/detach/:tenant', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const tenant = await member(request, reply, cluster)
    if (tenant === null) return reply
    const parent = cluster.parentTenantId === tenant.key
    return await confirmPage(ctx, request, reply, {
      question: `Detach ${tenant.identifier} from "${cluster.name}"?`,
      consequence: parent
        ? `${tenant.identifier} is the Parent Tenant of "${cluster.name}". It can leave only as the last tenant; the Tenant Cluster then has no Parent Tenant.`
        : `${tenant.identifier} will belong to no Tenant Cluster. Its data and domains stay as they are.`,
      action: `${base}/${cluster.id}/detach/${tenant.key}`,
      confirmLabel: `Detach ${tenant.identifier}`,
      cancel: `${base}/${cluster.id}`
    })
  })

  app.get('/clusters/:id/parent/:tenant', { config: ADMIN }, async (request, reply) => {
    const cluster = await load(request, reply)
    if (cluster === null) return reply
    const tenant = await member(request, reply, cluster)
    if (tenant === null) return reply
    const current = cluster.parentTenantId === null ? null : await ctx.tenancy.tenants.find(cluster.parentTenantId)
    return await confirmPage(ctx, request, reply, {
      question: `Make ${tenant.identifier} the Parent Tenant of "${cluster.name}"?`,
      consequence: current === null || current.key === tenant.key
        ? `${tenant.identifier} will manage "${cluster.name}".`
        : `${tenant.identifier} will manage "${cluster.name}" instead of ${current.identifier}; ${current.identifier} stays in the Tenant Cluster as an ordinary tenant.`,
      action: `${base}/${cluster.id}/parent/${tenant.key}`,
      confirmLabel: `Make ${tenant.identifier} the Parent Tenant`,
      cancel: `${base}/${cluster.id}`
    })
  })

  app.post('/clusters/:id/detach/:tenant', { config: ADMIN }, async (request, reply) => {
    return await change(request, reply, async (cluster) => {
      const key = (request.params as { tenant: string }).tenant
      if (!UUID_PATTERN.test(key)) throw new ClusterRuleError('That tenant is not in this Tenant Cluster.')
      const name = await identifiers([key])
      await clusters.detach(cluster.id, key)
      await ctx.audit.recordFor(request, 'cluster.detach', { cluster: { id: cluster.id, name: cluster.name }, tenant: { key, identifier: name } })
      return `Detached ${name} from "${cluster.name}".`
    })
  })

  app.post('/clusters/:id/parent/:tenant', { config: ADMIN }, async (request, reply) => {
    return await change(request, reply, async (cluster) => {
      const key = (request.params as { tenant: string }).tenant
      if (!UUID_PATTERN.test(key)) throw new ClusterRuleError('That tenant is not in this Tenant Cluster.')
      await clusters.setParent(cluster.id, key)
      await ctx.audit.recordFor(request, 'cluster.parent', { cluster: { id: cluster.id, name: cluster.name }, tenant: { key, identifier: await identifiers([key]) }, change: { parentTenantId: { from: cluster.parentTenantId, to: key } } })
      return `${await identifiers([key])} is now the Parent Tenant of "${cluster.name}".`
    })
  })
}
