import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { redirectWith, renderPage } from '../ui/render.js'
import { check, field, hasErrors, type FieldErrors } from '../ui/forms.js'
import { verifyPassword } from '../auth/password.js'
import { AdminAccounts, passwordProblem } from '../admins/admin-accounts.js'
import { idOf } from '../auth/sessions.js'

const SIGNED_IN = { admin: 'signed-in' as const }

/**
 * The signed-in admin's own account: their name, and their password. A new
 * password ends every session of the account, this browser's included, and
 * signs this browser in again with a new session.
 */
export function accountRoutes (app: FastifyInstance, ctx: AdminContext): void {
  const accounts = new AdminAccounts(ctx.tenancy.orm)
  const base = `${ctx.prefix}/account`

  const page = async (request: FastifyRequest, reply: FastifyReply, values: { name: string }, errors: FieldErrors, status = 200): Promise<FastifyReply> => {
    const admin = request.admin
    if (admin === null) return reply
    return await renderPage(ctx, request, reply, 'account/index', 'Your account', {
      account: { email: admin.email, name: admin.name, permissions: [...admin.permissions].sort() },
      values,
      errors,
      sessions: await ctx.sessions.countOf(admin.id),
      crumbs: [{ label: 'Dashboard', href: ctx.prefix }, { label: 'Your account', href: null }]
    }, status)
  }

  app.get('/account', { config: SIGNED_IN }, async (request, reply) => {
    return await page(request, reply, { name: request.admin?.name ?? '' }, {})
  })

  app.post('/account', { config: SIGNED_IN }, async (request, reply) => {
    const admin = request.admin
    if (admin === null) return reply
    const errors: FieldErrors = {}
    const name = check(errors, 'name', field(request.body, 'name'), { label: 'Name', required: true, max: 255 })
    if (hasErrors(errors)) return await page(request, reply, { name }, errors, 422)
    await accounts.rename(admin.id, name)
    await ctx.audit.recordFor(request, 'admin.rename', { change: { email: admin.email, name: { from: admin.name, to: name } } })
    return await redirectWith(ctx, request, reply, base, { type: 'success', text: 'Your name is saved.' })
  })

  app.post('/account/password', { config: SIGNED_IN }, async (request, reply) => {
    const admin = request.admin
    if (admin === null) return reply
    const errors: FieldErrors = {}
    const current = field(request.body, 'current')
    const next = field(request.body, 'password')
    const again = field(request.body, 'confirm')
    if (current.length === 0) errors.current = 'Enter your current password.'
    else if (current.length > 1024 || !await verifyPassword(current, await accounts.passwordHash(admin.id) ?? '')) errors.current = 'That is not your current password.'
    const problem = passwordProblem(next)
    if (problem !== null) errors.password = problem
    else if (next !== again) errors.confirm = 'The two new passwords differ.'
    else if (next === current) errors.password = 'Choose a password other than the current one.'
    reply.header('cache-control', 'no-store')
    if (hasErrors(errors)) return await page(request, reply, { name: admin.name }, errors, 422)
    await accounts.setPassword(admin.id, next)
    // Every session ended with the old password, this one too: this browser gets a new one.
    const token = await ctx.sessions.create(admin.id)
    if (token !== null) reply.setCookie(ctx.cookieName, token, { path: ctx.cookiePath, httpOnly: true, sameSite: 'lax', secure: ctx.secureCookies, signed: true })
    request.admin = token === null ? null : admin
    await ctx.audit.record({ actor: { id: admin.id, email: admin.email }, action: 'admin.password.change', change: { email: admin.email } })
    const text = 'Your password is changed. Every other browser signed in as you has been signed out.'
    if (token === null) return reply.redirect(`${ctx.prefix}/login`, 303)
    // The flash goes to the new session (the old one is gone).
    await ctx.sessions.pushFlash(idOf(token), { type: 'success', text })
    return reply.redirect(base, 303)
  })
}
