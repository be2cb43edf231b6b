import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../render.js'
import { check, EMAIL, field, fields, hasErrors, type FieldErrors } from '../forms.js'
import { hashPassword } from '../password.js'
import { CentralUserEntity } from '../../entities/central/user.entity.js'
import { TenantUserEntity } from '../../entities/central/tenant-user.entity.js'
import { UUID_PATTERN } from '../../tenant.js'
import { paging, readListParams, sortHeaders } from '../list-view.js'
import { confirmPage } from '../confirm.js'
import { centralTables } from '../../database/central-schema.js'

const ADMIN = { admin: 'manage_users' as const }
const GLOBAL_ID = /^[A-Za-z0-9_-]{1,64}$/
const USER_SORTS = ['name', 'email', 'tenants'] as const
/** Sort keys to columns: a fixed list, so no query value reaches SQL as a name. */
const USER_ORDER: Record<typeof USER_SORTS[number], string> = { name: 'lower(u.name)', email: 'u.email', tenants: 'tenants' }
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
  const db = async (sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> => await tenancy.orm.em.getConnection().execute(sql, params as any[], 'all')
  const t = centralTables(tenancy.orm)

  /** Syncing must be on, with a resource named `users`; otherwise the area says so. */
  const syncReady = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (tenancy.sync?.resources.has(RESOURCE) === true) return true
    await renderPage(ctx, request, reply, 'error', 'Users', { message: 'Resource syncing is not configured: give the tenancy plugin a sync resource named "users" to manage synced users here.' }, 503)
    return false
  }

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Record<string, any> | null> => {
    if (!await syncReady(request, reply)) return null
    const id = (request.params as { id: string }).id
    const user = GLOBAL_ID.test(id) ? (await db(`select global_id, name, email, created_at from ${t.users} where global_id = ?`, [id]))[0] : undefined
    if (user === undefined) {
      await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such user.' }, 404)
      return null
    }
    return user
  }

  app.get('/users', { config: ADMIN }, async (request, reply) => {
    if (!await syncReady(request, reply)) return reply
    const params = readListParams(request.query, USER_SORTS, 'name')
    const q = params.q
    const like = `%${q.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`
    const where = q === '' ? '' : 'where lower(u.name) like ? or lower(u.email) like ?'
    const args = q === '' ? [] : [like, like]
    const total = Number((await db(`select count(*)::int as n from ${t.users} u ${where}`, args))[0]?.n ?? 0)
    const p = paging(base, params, total, 'name')
    const rows = await db(`select u.global_id, u.name, u.email, (select count(*) from ${t.tenant_users} p where p.global_user_id = u.global_id)::int as tenants
      from ${t.users} u ${where} order by ${USER_ORDER[params.sort]} ${params.dir}, u.email limit ${p.limit} offset ${p.offset}`, args)
    return await renderPage(ctx, request, reply, 'users/index', 'Users', {
      q,
      any: q !== '' || total > 0,
      users: rows.map((r) => ({ globalId: r.global_id, name: r.name, email: r.email, tenants: r.tenants })),
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
    if (errors.email === undefined && (await db(`select 1 from ${t.users} where email = ?`, [values.email])).length > 0) errors.email = 'Another user has this email.'
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, null, 422)
    const em = tenancy.orm.em.fork()
    const user = em.create(CentralUserEntity, { name: values.name, email: values.email, password: await hashPassword(values.password) } as never)
    await em.flush()
    await ctx.audit.recordFor(request, 'user.create', { change: { globalId: String(user.globalId), name: values.name, email: values.email } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.globalId)}`, { type: 'success', text: `User ${values.name} created. Attach it to tenants to copy it into their databases.` })
  })

  app.get('/users/:id', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const attached = await tenancy.orm.em.fork().find(TenantUserEntity, { globalUserId: user.global_id }, { fields: ['tenantKey'] })
    const keys = new Set(attached.map((p) => p.tenantKey))
    const tenants = keys.size === 0 ? [] : (await tenancy.tenants.list({ keys: [...keys] })).tenants
    const others = (await tenancy.tenants.list({ status: 'active' })).tenants.filter((t) => !keys.has(t.key))
    return await renderPage(ctx, request, reply, 'users/show', user.name, {
      user: { globalId: user.global_id, name: user.name, email: user.email },
      tenants: tenants.map((t) => ({ key: t.key, identifier: t.identifier, name: t.name })),
      others: others.map((t) => ({ key: t.key, identifier: t.identifier, name: t.name }))
    })
  })

  app.get('/users/:id/edit', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    return await formPage(request, reply, { name: user.name, email: user.email }, {}, { globalId: user.global_id })
  })

  app.post('/users/:id/edit', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const errors: FieldErrors = {}
    const values = readForm(request.body, errors, false)
    if (errors.email === undefined && (await db(`select 1 from ${t.users} where email = ? and global_id <> ?`, [values.email, user.global_id])).length > 0) errors.email = 'Another user has this email.'
    if (hasErrors(errors)) return await formPage(request, reply, values, errors, { globalId: user.global_id }, 422)
    // Through the ORM, so resource syncing carries the change to every tenant copy.
    const em = tenancy.orm.em.fork()
    const entity = await em.findOneOrFail(CentralUserEntity, { globalId: user.global_id })
    entity.name = values.name
    entity.email = values.email
    if (values.password !== '') entity.password = await hashPassword(values.password)
    await em.flush()
    await ctx.audit.recordFor(request, 'user.update', { change: { globalId: String(user.global_id), name: { from: user.name, to: values.name }, email: { from: user.email, to: values.email }, password: values.password === '' ? 'kept' : 'changed' } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.global_id)}`, { type: 'success', text: 'User saved; the change reaches every tenant where it exists.' })
  })

  app.post('/users/:id/attach', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const keys = fields(request.body, 'tenants').filter((k) => UUID_PATTERN.test(k))
    const tenants = (await Promise.all(keys.map(async (k) => await tenancy.tenants.find(k)))).filter((t) => t !== null)
    if (tenants.length === 0) return await redirectWith(ctx, request, reply, `${base}/${String(user.global_id)}`, { type: 'error', text: 'Choose at least one tenant to attach.' })
    for (const tenant of tenants) {
      await tenancy.sync?.attach(RESOURCE, user.global_id, tenant)
      await ctx.audit.recordFor(request, 'user.attach', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { globalId: String(user.global_id), name: user.name } })
    }
    return await redirectWith(ctx, request, reply, `${base}/${String(user.global_id)}`, { type: 'success', text: `Attached to ${tenants.map((t) => t.identifier).join(', ')}: the user is copied into their databases.` })
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
      action: `${base}/${String(user.global_id)}/detach/${tenant.key}`,
      confirmLabel: `Detach from ${tenant.identifier}`,
      cancel: `${base}/${String(user.global_id)}`,
      danger: true
    })
  })

  app.post('/users/:id/detach/:tenant', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const key = (request.params as { tenant: string }).tenant
    const tenant = UUID_PATTERN.test(key) ? await tenancy.tenants.find(key) : null
    if (tenant === null) return await redirectWith(ctx, request, reply, `${base}/${String(user.global_id)}`, { type: 'error', text: 'There is no such tenant.' })
    await tenancy.sync?.detach(RESOURCE, user.global_id, tenant)
    await ctx.audit.recordFor(request, 'user.detach', { tenant: { key: tenant.key, identifier: tenant.identifier }, change: { globalId: String(user.global_id), name: user.name } })
    return await redirectWith(ctx, request, reply, `${base}/${String(user.global_id)}`, { type: 'success', text: `Detached from ${tenant.identifier}: its copy is removed.` })
  })

  app.get('/users/:id/delete', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    return await renderPage(ctx, request, reply, 'users/delete', `Delete ${user.name}`, { user: { globalId: user.global_id, name: user.name } })
  })

  app.post('/users/:id/delete', { config: ADMIN }, async (request, reply) => {
    const user = await load(request, reply)
    if (user === null) return reply
    const em = tenancy.orm.em.fork()
    em.remove(await em.findOneOrFail(CentralUserEntity, { globalId: user.global_id }))
    await em.flush()
    await ctx.audit.recordFor(request, 'user.delete', { change: { globalId: String(user.global_id), name: user.name, email: user.email } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `User ${user.name} deleted, with its copies in every tenant.` })
  })
}
