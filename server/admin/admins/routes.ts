import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage, revealOnce } from '../ui/render.js'
import { confirmPage } from '../ui/confirm.js'
import { AdminAccounts, PASSWORD_MIN } from './admin-accounts.js'
import { PERMISSION_LABELS } from './permission-labels.js'
import { check, EMAIL, field, fields, hasErrors, type FieldErrors } from '../ui/forms.js'
import { generatePassword, hashPassword } from '../auth/password.js'
import { PERMISSIONS, type Permission } from '../../entities/central/admin.entity.js'
import { UUID_PATTERN } from '../../tenant.js'
import { pageOf, readListParams, sortHeaders } from '../ui/list-view.js'
import { centralTables } from '../../database/central-schema.js'

const ADMIN = { admin: 'manage_admins' as const }
const ADMIN_SORTS = ['name', 'email', 'last'] as const
const ROLE_SORTS = ['name'] as const
type Row = Record<string, any>

/** The Admins area: operators, their roles, and the roles' permissions. */
export function adminRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const base = `${ctx.prefix}/admins`
  const accounts = new AdminAccounts(ctx.tenancy.orm)
  const conn = (): ReturnType<typeof ctx.tenancy.orm.em.getConnection> => ctx.tenancy.orm.em.getConnection()
  const db = async (sql: string, params: unknown[] = []): Promise<Row[]> => await conn().execute(sql, params as any[], 'all')
  const t = centralTables(ctx.tenancy.orm)
  const roles = async (): Promise<Array<{ id: number, name: string, permissions: string[] }>> =>
    (await db(`select id, name, permissions from ${t.admin_roles} order by name`)).map((r) => ({ id: r.id, name: r.name, permissions: r.permissions }))

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<Row | null> => {
    const id = (request.params as { id: string }).id
    const row = UUID_PATTERN.test(id) ? (await db(`select id, email, name, active from ${t.admins} where id = ?`, [id]))[0] : undefined
    if (row === undefined) {
      await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such admin.' }, 404)
      return null
    }
    return row
  }

  app.get('/admins', { config: ADMIN }, async (request, reply) => {
    const rows = await db(`select a.id, a.email, a.name, a.active, a.last_login_at,
      coalesce(string_agg(r.name, ', ' order by r.name), '') as roles
      from ${t.admins} a left join ${t.admin_role_assignments} ra on ra.admin_id = a.id left join ${t.admin_roles} r on r.id = ra.role_id
      group by a.id order by a.name, a.email`)
    const once = ctx.oneTime.take(request, reply)
    const params = readListParams(request.query, ADMIN_SORTS, 'name')
    const all = rows.map((r) => ({ id: String(r.id), email: String(r.email), name: String(r.name), active: r.active === true, roles: String(r.roles), lastLogin: r.last_login_at === null ? 'never' : new Date(r.last_login_at).toISOString().slice(0, 16).replace('T', ' ') }))
    const { rows: admins, paging } = pageOf(all, params, (a) => `${a.name} ${a.email} ${a.roles}`, (a, sort) => sort === 'email' ? a.email : sort === 'last' ? a.lastLogin : a.name.toLowerCase(), base, 'name')
    return await renderPage(ctx, request, reply, 'admins/index', 'Admins', {
      once,
      admins,
      params,
      paging,
      headers: sortHeaders(base, params, [['name', 'Name'], ['email', 'Email'], ['last', 'Last sign-in']], 'name')
    })
  })

  const formPage = async (request: FastifyRequest, reply: FastifyReply, values: { name: string, email: string, roles: string[], active: boolean }, errors: FieldErrors, admin: Row | null, status = 200): Promise<FastifyReply> =>
    await renderPage(ctx, request, reply, 'admins/form', admin === null ? 'New admin' : `Edit ${String(admin.name)}`, {
      values,
      errors,
      admin,
      self: admin !== null && admin.id === request.admin?.id,
      // A generated password (a reset), shown once.
      once: admin === null ? null : ctx.oneTime.take(request, reply),
      roles: await roles(),
      action: admin === null ? `${base}/new` : `${base}/${String(admin.id)}/edit`
    }, status)

  /** The permissions a set of role ids grants. */
  const permissionsOf = async (roleIds: number[]): Promise<Set<string>> => {
    if (roleIds.length === 0) return new Set()
    const rows = await db(`select unnest(permissions) as p from ${t.admin_roles} where id in (?)`, [roleIds])
    return new Set(rows.map((r) => String(r.p)))
  }

  const readRoles = async (body: unknown, errors: FieldErrors): Promise<number[]> => {
    const known = new Set((await roles()).map((r) => r.id))
    const ids = fields(body, 'roles').map(Number)
    if (ids.some((id) => !known.has(id))) errors.roles = 'Choose roles from the list.'
    return ids.filter((id) => known.has(id))
  }

  app.get('/admins/new', { config: ADMIN }, async (request, reply) => {
    return await formPage(request, reply, { name: '', email: '', roles: [], active: true }, {}, null)
  })

  app.post('/admins/new', { config: ADMIN }, async (request, reply) => {
    const errors: FieldErrors = {}
    const name = check(errors, 'name', field(request.body, 'name'), { label: 'Name', required: true, max: 255 })
    const email = check(errors, 'email', field(request.body, 'email').toLowerCase(), { label: 'Email', required: true, max: 255, pattern: EMAIL, patternMessage: 'Enter an email address.' })
    let password = field(request.body, 'password')
    if (password.length > 0 && password.length < PASSWORD_MIN) errors.password = `Password must be at least ${PASSWORD_MIN} characters, or leave it empty to generate one.`
    if (password.length > 200) errors.password = 'Password must be at most 200 characters.'
    const roleIds = await readRoles(request.body, errors)
    if (errors.email === undefined && (await db(`select 1 from ${t.admins} where email = ?`, [email])).length > 0) errors.email = 'Another admin has this email.'
    if (hasErrors(errors)) return await formPage(request, reply, { name, email, roles: roleIds.map(String), active: true }, errors, null, 422)
    const generated = password === ''
    if (generated) password = generatePassword()
    const id = uuidv7()
    await conn().transactional(async (trx) => {
      await conn().execute(`insert into ${t.admins} (id, email, name, password_hash) values (?, ?, ?, ?)`, [id, email, name, await hashPassword(password)], 'run', trx)
      for (const roleId of roleIds) await conn().execute(`insert into ${t.admin_role_assignments} (admin_id, role_id) values (?, ?)`, [id, roleId], 'run', trx)
    })
    await ctx.audit.recordFor(request, 'admin.create', { change: { email, name, roles: roleIds, password: generated ? 'generated' : 'set' } })
    if (!generated) return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Admin ${email} created.` })
    // Never into the session's flash (a database row): shown once, to this browser only.
    return await revealOnce(ctx, request, reply, base, `Admin ${email} created. Their password, shown only this once: ${password}`)
  })

  app.get('/admins/:id/edit', { config: ADMIN }, async (request, reply) => {
    const admin = await load(request, reply)
    if (admin === null) return reply
    const assigned = (await db(`select role_id from ${t.admin_role_assignments} where admin_id = ?`, [admin.id])).map((r) => String(r.role_id))
    return await formPage(request, reply, { name: admin.name, email: admin.email, roles: assigned, active: admin.active }, {}, admin)
  })

  // Resetting another admin's password: asked first, then a generated password shown once to the resetting admin.
  app.get('/admins/:id/password', { config: ADMIN }, async (request, reply) => {
    const admin = await load(request, reply)
    if (admin === null) return reply
    if (admin.id === request.admin?.id) return await redirectWith(ctx, request, reply, `${ctx.prefix}/account`, { type: 'info', text: 'Change your own password here, with your current one.' })
    return await confirmPage(ctx, request, reply, {
      question: `Reset the password of ${String(admin.email)}?`,
      consequence: `A new password is generated and shown to you once; give it to ${String(admin.name)} yourself. Every browser signed in as ${String(admin.email)} is signed out at once, and the old password stops working.`,
      action: `${base}/${String(admin.id)}/password`,
      confirmLabel: 'Reset password',
      cancel: `${base}/${String(admin.id)}/edit`,
      danger: true
    })
  })

  app.post('/admins/:id/password', { config: ADMIN }, async (request, reply) => {
    const admin = await load(request, reply)
    if (admin === null) return reply
    if (admin.id === request.admin?.id) return await redirectWith(ctx, request, reply, `${ctx.prefix}/account`, { type: 'error', text: 'Change your own password on your account page, with your current one.' })
    const password = generatePassword()
    await accounts.setPassword(String(admin.id), password)
    await ctx.audit.recordFor(request, 'admin.password.reset', { change: { email: admin.email, sessions: 'ended' } })
    return await revealOnce(ctx, request, reply, `${base}/${String(admin.id)}/edit`, `New password for ${String(admin.email)}, shown only this once: ${password} — their sessions have ended.`)
  })

  app.post('/admins/:id/edit', { config: ADMIN }, async (request, reply) => {
    const admin = await load(request, reply)
    if (admin === null) return reply
    const errors: FieldErrors = {}
    const name = check(errors, 'name', field(request.body, 'name'), { label: 'Name', required: true, max: 255 })
    const roleIds = await readRoles(request.body, errors)
    const active = field(request.body, 'active') === 'on'
    const self = admin.id === request.admin?.id
    if (self && !active) errors.active = 'You cannot deactivate yourself.'
    if (self && !(await permissionsOf(roleIds)).has('manage_admins' satisfies Permission)) errors.roles = 'You cannot remove your own last manage_admins permission.'
    if (hasErrors(errors)) return await formPage(request, reply, { name, email: admin.email, roles: roleIds.map(String), active }, errors, admin, 422)
    await conn().transactional(async (trx) => {
      await conn().execute(`update ${t.admins} set name = ?, active = ? where id = ?`, [name, active, admin.id], 'run', trx)
      await conn().execute(`delete from ${t.admin_role_assignments} where admin_id = ?`, [admin.id], 'run', trx)
      for (const roleId of roleIds) await conn().execute(`insert into ${t.admin_role_assignments} (admin_id, role_id) values (?, ?)`, [admin.id, roleId], 'run', trx)
    })
    // A deactivated admin is signed out everywhere at once.
    if (!active) await ctx.sessions.destroyAll(admin.id)
    await ctx.audit.recordFor(request, 'admin.update', { change: { email: admin.email, name: { from: admin.name, to: name }, active: { from: admin.active, to: active }, roles: roleIds } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Admin ${String(admin.email)} saved${active ? '' : ' and deactivated: their sessions have ended'}.` })
  })

  const rolesPage = async (request: FastifyRequest, reply: FastifyReply, values: { name: string, permissions: string[] }, errors: FieldErrors, status = 200): Promise<FastifyReply> => {
    const params = readListParams(request.query, ROLE_SORTS, 'name')
    const { rows, paging } = pageOf(await roles(), params, (r) => `${r.name} ${r.permissions.join(' ')}`, (r) => r.name.toLowerCase(), `${base}/roles`, 'name')
    return await renderPage(ctx, request, reply, 'admins/roles', 'Roles', { roles: rows, params, paging, headers: sortHeaders(`${base}/roles`, params, [['name', 'Role']], 'name'), permissions: PERMISSIONS, labels: PERMISSION_LABELS, values, errors }, status)
  }

  app.get('/admins/roles', { config: ADMIN }, async (request, reply) => {
    return await rolesPage(request, reply, { name: '', permissions: [] }, {})
  })

  app.post('/admins/roles', { config: ADMIN }, async (request, reply) => {
    const errors: FieldErrors = {}
    const name = check(errors, 'name', field(request.body, 'name'), { label: 'Role name', required: true, max: 63, pattern: /^[a-z0-9][a-z0-9 _-]*$/i, patternMessage: 'Use letters, digits, spaces, dashes and underscores.' })
    const permissions = fields(request.body, 'permissions')
    if (permissions.some((p) => !(PERMISSIONS as readonly string[]).includes(p))) errors.permissions = 'Choose permissions from the list.'
    if (errors.name === undefined && (await db(`select 1 from ${t.admin_roles} where name = ?`, [name])).length > 0) errors.name = 'A role has this name already.'
    if (hasErrors(errors)) return await rolesPage(request, reply, { name, permissions }, errors, 422)
    await db(`insert into ${t.admin_roles} (name, permissions) values (?, ?::text[])`, [name, `{${permissions.join(',')}}`])
    await ctx.audit.recordFor(request, 'role.create', { change: { name, permissions } })
    return await redirectWith(ctx, request, reply, `${base}/roles`, { type: 'success', text: `Role ${name} created.` })
  })
}
