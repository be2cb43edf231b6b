import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { check, EMAIL, field, fields, hasErrors, type FieldErrors } from '../ui/forms.js'
import { hashPassword } from '../auth/password.js'
import { CentralUserEntity } from '../../entities/central/user.entity.js'
import { UUID_PATTERN } from '../../tenant.js'
import { LIST_PAGE_SIZE, paging, readListParams, sortHeaders } from '../ui/list-view.js'
import { PICKER_SIZE, pickerJson, readFind, tenantAttachPicker } from '../ui/picker.js'
import { UserQueries, type UserRow } from './user-queries.js'
import { confirmPage } from '../ui/confirm.js'

const ADMIN = { admin: 'manage_users' as const }
const GLOBAL_ID = /^[A-Za-z0-9_-]{1,64}$/
const USER_SORTS = ['name', 'email', 'tenants'] as const
const RESOURCE = 'users'

interface UserForm { name: string, email: string, password: string }

function readForm (body: unknown, errors: FieldErrors, passwordRequired: boolean): UserForm {
  const password = field(body, 'password')
  if (passwordRequired && password.length === 0) errors.password = 'Password is required.'
  else if (password.length > 0 && password.length < 8) errors.password = 'Password must be at least 8 characters.'
  else if (password.length > 200) errors.password = 'Password must be at most 200 characters.'
  return {
    name: check(errors, 'name', field(body, 'name'), { label: 'Name', required: true, max: 255 }),
    email: check(errors, 'email', field(body, 'email').toLowerCase(), { label: 'Email', required: true, max: 255, pattern: EMAIL, patternMessage: 'Enter an email address.' }),
    password
  }
}

/** The Users area: synced users, and the tenants each one exists in. Changes go through resource syncing. */
export function userRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const tenancy = ctx.tenancy
  const base = `${ctx.prefix}/users`
  const users = new UserQueries(tenancy.orm)

  /** Syncing must be on, with a resource named `users`; otherwise the area says so. */
  const syncReady = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (tenancy.sync?.resources.has(RESOURCE) === true) return true
    await renderPage(ctx, request, reply, 'error', 'Users', { message: 'Resource syncing is not configured: give the tenancy plugin a sync resource named "users" to manage synced users here.' }, 503)
    return false
  }

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<UserRow | null> => {
    if (!await syncReady(request, reply)) return null
    const id = (request.params as { id: string }).id
    const user = GLOBAL_ID.test(id) ? await users.find(id) : null
    if (user === null) await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such user.' }, 404)
    return user
  }

  app.get('/users', { config: ADMIN }, async (request, reply) => {
    if (!await syncReady(request, reply)) return reply
    const params = readListParams(request.query, USER_SORTS, 'name')
    const list = async (page: number): Promise<Awaited<ReturnType<typeof users.list>>> =>
      await users.list({ q: params.q, sort: params.sort, dir: params.dir, limit: LIST_PAGE_SIZE, offset: (page - 1) * LIST_PAGE_SIZE })
    let found = await list(params.page)
    const p = paging(base, params, found.total, 'name')
    // A page past the end (a hand-made link) shows the last one.
    if (p.pageNumber < params.page && found.total > 0) found = await list(p.pageNumber)
    return await renderPage(ctx, request, reply, 'users/index', 'Users', {
      q: params.q,
      any: params.q !== '' || found.total > 0,
      users: found.rows,
      paging: p,
      headers: sortHeaders(base, params, [['name', 'Name'], ['email', 'Email'], ['tenants', 'Tenants']], 'name')
    })
  })

  const formPage = async (request: FastifyRequest, reply: FastifyReply, values: Omit<UserForm, 'password'>, errors: FieldErrors, user: { globalId: string } | null, status = 200): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'users/form', user === null ? 'New user' : `Edit ${values.name}`, { values, errors, user, action: user === null ? `${base}/new` : `${base}/${user.globalId}/edit` }, status)

  app.get('/users/new', { config: ADMIN }, async (request, reply) => {
    if (!await syncReady(request, reply)) return reply
    return await formPage(request, reply, { name: '', email: '' }, {}, null)
  })

  app.post('/users/new', { config: ADMIN }, async (request, reply) => {
    if (!await syncReady(request, reply)) return reply
    const errors: FieldErrors = {}
    const values = readForm(request.body, errors, true)
    if (errors.email === undefined && await users.emailTaken(values.email)) errors.email = 'Another user has this email.'
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, null, 422)
    const em = tenancy.orm.em.fork()
    const user = em.create(CentralUserEntity, { name: values.name, email: values.email, password: await hashPassword(values.password) } as never)
    await em.flush()
    await ctx.audit.recordFor(request, 'user.create', { change: { globalId: String(user.globalId), name: values.name, email: values.email } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'success', text: `User ${values.name} created. Attach it to tenants to copy it into their databases.` })
  })

  /** Tenants the user is not in yet, matching `find`, for the attach picker. */
  const candidates = async (user: UserRow, find: string, attached?: string[]): Promise<{ total: number, options: Array<{ value: string, label: string }> }> => {
    const { total, tenants } = await tenancy.tenants.list({ status: 'active', excludeKeys: attached ?? await users.tenantKeysOf(user.globalId), search: find === '' ? undefined : find, limit: PICKER_SIZE })
    return { total, options: tenants.map((t) => ({ value: t.key, label: `${t.identifier} — ${t.name}` })) }
  }

  app.get('/users/:id', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const url = `${base}/${user.globalId}`
    const params = readListParams(request.query, ['identifier', 'name'] as const, 'identifier')
    const find = readFind(request.query)
    const extra = { find }
    const keys = await users.tenantKeysOf(user.globalId)
    const list = async (page: number): Promise<Awaited<ReturnType<typeof tenancy.tenants.list>>> => keys.length === 0
      ? { total: 0, tenants: [] }
      : await tenancy.tenants.list({ keys, search: params.q === '' ? undefined : params.q, sort: params.sort, dir: params.dir, limit: LIST_PAGE_SIZE, offset: (page - 1) * LIST_PAGE_SIZE })
    let { total, tenants } = await list(params.page)
    const p = paging(url, params, total, 'identifier', extra)
    if (p.pageNumber < params.page && total > 0) ({ total, tenants } = await list(p.pageNumber))
    const picker = await candidates(user, find, keys)
    return await renderPage(ctx, request, reply, 'users/show', user.name, {
      user,
      params,
      attachedCount: keys.length,
      tenants: tenants.map((t) => ({ key: t.key, identifier: t.identifier, name: t.name, status: t.status })),
      paging: p,
      headers: sortHeaders(url, params, [['identifier', 'Tenant'], ['name', 'Name']], 'identifier', extra),
      picker: tenantAttachPicker(url, { heading: 'Attach to tenants', label: 'Find tenants to attach to', legend: 'Tenants to attach to', noun: 'active tenants' }, params.q, find, picker)
    })
  })

  app.get('/users/:id/candidates', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const find = readFind(request.query)
    const { total, options } = await candidates(user, find)
    return pickerJson(options, total, find, 'active tenants')
  })

  app.get('/users/:id/edit', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    return await formPage(request, reply, { name: user.name, email: user.email }, {}, { globalId: user.globalId })
  })

  app.post('/users/:id/edit', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const errors: FieldErrors = {}
    const values = readForm(request.body, errors, false)
    if (errors.email === undefined && await users.emailTaken(values.email, user.globalId)) errors.email = 'Another user has this email.'
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, { globalId: user.globalId }, 422)
    // Through the ORM, so resource syncing carries the change to every tenant copy.
    const em = tenancy.orm.em.fork()
    const entity = await em.findOneOrFail(CentralUserEntity, { globalId: user.globalId })
    entity.name = values.name
    entity.email = values.email
    if (values.password !== '') entity.password = await hashPassword(values.password)
    await em.flush()
    await ctx.audit.recordFor(request, 'user.update', { change: { globalId: String(user.globalId), name: { from: user.name, to: values.name }, email: { from: user.email, to: values.email }, password: values.password === '' ? 'kept' : 'changed' } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'success', text: 'User saved; the change reaches every tenant where it exists.' })
  })

  app.post('/users/:id/attach', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const keys = fields(request.body, 'tenants').filter((k) => UUID_PATTERN.test(k))
    const tenants = (await Promise.all(keys.map(async (k) => await tenancy.tenants.find(k)))).filter((t) => t !== null)
    if (tenants.length === 0) return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'error', text: 'Choose at least one tenant to attach.' })
    for (const tenant of tenants) {
      await tenancy.sync?.attach(RESOURCE, user.globalId, tenant)
      await ctx.audit.recordFor(request, 'user.attach', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { globalId: String(user.globalId), name: user.name } })
    }
    return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'success', text: `Attached to ${tenants.map((t) => t.identifier).join(', ')}: the user is on its way into their databases (a copy a tenant database refuses is tried again, and logged).` })
  })

  app.get('/users/:id/detach/:tenant', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const key = (request.params as { tenant: string }).tenant
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) return await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such tenant.' }, 404)
    return await confirmPage(ctx, request, reply, {
      question: `Detach ${String(user.name)} from ${tenant.identifier}?`,
      consequence: `This removes ${String(user.name)}'s copy from ${tenant.identifier}'s database. The central user and its copies in other tenants stay.`,
      action: `${base}/${String(user.globalId)}/detach/${tenant.key}`,
      confirmLabel: `Detach from ${tenant.identifier}`,
      cancel: `${base}/${String(user.globalId)}`,
      danger: true
    })
  })

  app.post('/users/:id/detach/:tenant', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const key = (request.params as { tenant: string }).tenant
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'error', text: 'There is no such tenant.' })
    await tenancy.sync?.detach(RESOURCE, user.globalId, tenant)
    await ctx.audit.recordFor(request, 'user.detach', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { globalId: String(user.globalId), name: user.name } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'success', text: `Detached from ${tenant.identifier}: its copy is removed.` })
  })

  app.get('/users/:id/delete', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    return await renderPage(ctx, request, reply, 'users/delete', `Delete ${user.name}`, { user: { globalId: user.globalId, name: user.name } })
  })

  app.post('/users/:id/delete', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const em = tenancy.orm.em.fork()
    em.remove(await em.findOneOrFail(CentralUserEntity, { globalId: user.globalId }))
    await em.flush()
    await ctx.audit.recordFor(request, 'user.delete', { change: { globalId: String(user.globalId), name: user.name, email: user.email } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `User ${user.name} deleted, with its copies in every tenant.` })
  })
}
