import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage, revealOnce } from '../ui/render.js'
import { confirmPage } from '../ui/confirm.js'
import { AdminAccounts, passwordProblem, type AdminAccount, type AdminRole } from './admin-accounts.js'
import { PERMISSION_LABELS } from './permission-labels.js'
import { check, EMAIL, field, fields, hasErrors, type FieldErrors } from '../ui/forms.js'
import { generatePassword } from '../auth/password.js'
import { PERMISSIONS, type Permission } from '../../entities/central/admin.entity.js'
import { UUID_PATTERN } from '../../tenant.js'
import { pageOf, readListParams, sortHeaders } from '../ui/list-view.js'
import { AdminExistsError } from '../../errors.js'

const ADMIN = { admin: 'manage_admins' as const }
const ADMIN_SORTS = ['name', 'email', 'last'] as const
const ROLE_SORTS = ['name'] as const

/** The Admins area: operators, their roles, and the roles' permissions. */
export function adminRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const base = `${ctx.prefix}/admins`
  const accounts = new AdminAccounts(ctx.tenancy.orm)
  const roles = async (): Promise<AdminRole[]> => await accounts.roles()

  const load = async (request: FastifyRequest, reply: FastifyReply): Promise<AdminAccount | null> => {
    const id = (request.params as { id: string }).id
    const row = UUID_PATTERN.test(id) ? await accounts.find(id) : null
    if (row === null) {
      await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is no such admin.' }, 404)
      return null
    }
    return row
  }

  app.get('/admins', { config: ADMIN }, async (request, reply) => {
    const rows = await accounts.list()
    const once = ctx.oneTime.take(request, reply)
    const params = readListParams(request.query, ADMIN_SORTS, 'name')
    const all = rows.map((r) => ({ id: r.id, email: r.email, name: r.name, active: r.active, roles: r.roles, lastLogin: r.lastLoginAt === null ? 'never' : r.lastLoginAt.toISOString().slice(0, 16).replace('T', ' ') }))
    const { rows: admins, paging } = pageOf(all, params, (a) => `${a.name} ${a.email} ${a.roles}`, (a, sort) => sort === 'email' ? a.email : sort === 'last' ? a.lastLogin : a.name.toLowerCase(), base, 'name')
    return await renderPage(ctx, request, reply, 'admins/index', 'Admins', {
      once,
      admins,
      params,
      paging,
      headers: sortHeaders(base, params, [['name', 'Name'], ['email', 'Email'], ['last', 'Last sign-in']], 'name')
    })
  })

  const formPage = async (
    request: FastifyRequest, reply: FastifyReply, values: { name: string, email: string, roles: string[], active: boolean },
    errors: FieldErrors, admin: AdminAccount | null, status = 200
  ): Promise<FastifyReply> =>
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
  const permissionsOf = async (roleIds: number[]): Promise<Set<string>> => await accounts.permissionsOf(roleIds)

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
    const problem = password === '' ? null : passwordProblem(password, 'leave it empty')
    if (problem !== null) errors.password = problem
    const roleIds = await readRoles(request.body, errors)
    const taken = async (): Promise<FastifyReply> => {
      errors.email = 'Another admin has this email.'
      return await formPage(request, reply, { name, email, roles: roleIds.map(String), active: true }, errors, null, 422)
    }
    if (errors.email === undefined && await accounts.findByEmail(email) !== null) return await taken()
    if (hasErrors(errors)) return await formPage(request, reply, { name, email, roles: roleIds.map(String), active: true }, errors, null, 422)
    const generated = password === ''
    if (generated) password = generatePassword()
    try {
      await accounts.create({ email, name, password, roleIds })
    } catch (error) {
      // Another admin (or admin:create) took the email at the same moment.
      if (error instanceof AdminExistsError) return await taken()
      throw error
    }
    await ctx.audit.recordFor(request, 'admin.create', { change: { email, name, roles: roleIds, password: generated ? 'generated' : 'set' } })
    if (!generated) return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Admin ${email} created.` })
    // Never into the session's flash (a database row): shown once, to this browser only.
    return await revealOnce(ctx, request, reply, base, `Admin ${email} created. Their password, shown only this once: ${password}`)
  })

  app.get('/admins/:id/edit', { config: ADMIN }, async (request, reply) => {
    const admin = await load(request, reply)
    if (admin === null) return reply
    const assigned = (await accounts.roleIdsOf(admin.id)).map(String)
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
    await accounts.update(admin.id, { name, active, roleIds })
    // A deactivated admin is signed out everywhere at once.
    if (!active) await ctx.sessions.destroyAll(admin.id)
    await ctx.audit.recordFor(request, 'admin.update', { change: { email: admin.email, name: { from: admin.name, to: name }, active: { from: admin.active, to: active }, roles: roleIds } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: `Admin ${String(admin.email)} saved${active ? '' : ' and deactivated: their sessions have ended'}.` })
  })

  const rolesPage = async (
    request: FastifyRequest, reply: FastifyReply, values: { name: string, permissions: string[] }, errors: FieldErrors, status = 200
  ): Promise<FastifyReply> => {
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
    if (!hasErrors(errors) && !await accounts.createRole(name, permissions)) errors.name = 'A role has this name already.'
    if (hasErrors(errors)) return await rolesPage(request, reply, { name, permissions }, errors, 422)
    await ctx.audit.recordFor(request, 'role.create', { change: { name, permissions } })
    return await redirectWith(ctx, request, reply, `${base}/roles`, { type: 'success', text: `Role ${name} created.` })
  })
}
