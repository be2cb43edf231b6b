import type { FastifyInstance } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../render.js'
import { verifyPassword } from '../password.js'
import { check, field, hasErrors, EMAIL, type FieldErrors } from '../forms.js'

/** Failed sign-ins in a row before an account is locked for a while. */
const MAX_FAILURES = 5
const LOCK_MINUTES = 15

/** Safe place to go after signing in: only paths inside the admin. */
function nextPath (ctx: AdminContext, value: string): string {
  return value.startsWith(ctx.prefix + '/') && !value.startsWith('//') && !value.includes('\\') ? value : ctx.prefix
}

/** Sign-in and sign-out. */
export function sessionRoutes (app: FastifyInstance, ctx: AdminContext): void {
  app.get('/login', { config: { admin: 'public' } }, async (request, reply) => {
    if (request.admin !== null) return await reply.redirect(ctx.prefix, 303)
    const next = nextPath(ctx, String((request.query as Record<string, unknown>).next ?? ''))
    return await renderPage(ctx, request, reply, 'login', 'Sign in', { values: { email: '' }, errors: {}, next })
  })

  app.post('/login', { config: { admin: 'public' } }, async (request, reply) => {
    const errors: FieldErrors = {}
    const email = check(errors, 'email', field(request.body, 'email').toLowerCase(), { label: 'Email', required: true, max: 255, pattern: EMAIL, patternMessage: 'Enter an email address.' })
    const password = field(request.body, 'password')
    if (password.length === 0) errors.password = 'Password is required.'
    if (password.length > 1024) errors.password = 'Password is too long.'
    const next = nextPath(ctx, field(request.body, 'next'))
    const again = async (status: number): Promise<unknown> => await renderPage(ctx, request, reply, 'login', 'Sign in', { values: { email }, errors, next }, status)
    if (hasErrors(errors)) return await again(422)

    const conn = ctx.tenancy.orm.em.getConnection()
    const rows = await conn.execute('select id, password_hash, active, locked_until > now() as locked from admins where email = ?', [email], 'all')
    const row = rows[0]
    if (row?.locked === true) {
      errors.form = `Too many failed attempts: this account is locked for ${LOCK_MINUTES} minutes.`
      return await again(429)
    }
    // The same work and message whether the account exists or not.
    const ok = await verifyPassword(password, row?.password_hash ?? 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA')
    if (row === undefined || !ok || row.active !== true) {
      if (row !== undefined) {
        await conn.execute(
          `update admins set failed_attempts = failed_attempts + 1,
             locked_until = case when failed_attempts + 1 >= ? then now() + interval '${LOCK_MINUTES} minutes' else locked_until end
           where id = ?`, [MAX_FAILURES, row.id], 'run')
      }
      errors.form = 'The email or password is wrong.'
      return await again(401)
    }
    await conn.execute('update admins set failed_attempts = 0, locked_until = null, last_login_at = now() where id = ?', [row.id], 'run')
    const old = request.cookies[ctx.cookieName]
    if (old !== undefined) {
      const unsigned = request.unsignCookie(old)
      if (unsigned.valid && unsigned.value !== null) await ctx.sessions.destroy(unsigned.value)
    }
    const token = await ctx.sessions.create(String(row.id))
    reply.setCookie(ctx.cookieName, token, { path: ctx.prefix, httpOnly: true, sameSite: 'lax', secure: ctx.secureCookies, signed: true })
    return await reply.redirect(next, 303)
  })

  app.post('/logout', { config: { admin: 'signed-in' } }, async (request, reply) => {
    const raw = request.cookies[ctx.cookieName]
    if (raw !== undefined) {
      const unsigned = request.unsignCookie(raw)
      if (unsigned.valid && unsigned.value !== null) await ctx.sessions.destroy(unsigned.value)
    }
    reply.clearCookie(ctx.cookieName, { path: ctx.prefix })
    return await reply.redirect(ctx.prefix + '/login', 303)
  })
}
