import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { renderPage } from '../ui/render.js'
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './password.js'
import { check, field, hasErrors, EMAIL, type FieldErrors } from '../ui/forms.js'
import type { SignInThrottle } from './sign-in-throttle.js'
import { SignInLimitError } from '../../errors.js'
import { AdminAccounts } from '../admins/admin-accounts.js'

export interface SessionRouteOptions {
  throttle: SignInThrottle
  signInLimit: { max: number, minutes: number }
}

/** Safe place to go after signing in: only paths inside the admin. */
function nextPath (ctx: AdminContext, value: string): string {
  return value.startsWith(ctx.prefix + '/') && !value.startsWith('//') && !value.includes('\\') ? value : ctx.prefix
}

/** A wait in whole minutes: coarse on purpose, so two answers a second apart read the same. */
function minutes (seconds: number): string {
  const n = Math.max(1, Math.ceil(seconds / 60))
  return n === 1 ? 'a minute' : `${n} minutes`
}

/** Sign-in and sign-out. */
export function sessionRoutes (app: FastifyInstance, ctx: AdminContext, options: SessionRouteOptions): void {
  const { throttle, signInLimit } = options
  const sessionToken = (request: FastifyRequest): string | null => {
    const raw = request.cookies[ctx.cookieName]
    if (raw === undefined) return null
    const unsigned = request.unsignCookie(raw)
    return unsigned.valid && unsigned.value !== null ? unsigned.value : null
  }

  app.get('/login', { config: { admin: 'public' } }, async (request, reply) => {
    if (request.admin !== null) return await reply.redirect(ctx.prefix, 303)
    const next = nextPath(ctx, String((request.query as Record<string, unknown>).next ?? ''))
    return await renderPage(ctx, request, reply, 'login', 'Sign in', { values: { email: '' }, errors: {}, next })
  })

  app.post('/login', {
    config: {
      admin: 'public',
      // Per address, whatever the account: a sprayer trying many emails meets this limit.
      rateLimit: {
        max: signInLimit.max,
        timeWindow: signInLimit.minutes * 60_000,
        // The window, not the seconds left: the same words for every account and moment (Retry-After has the seconds).
        errorResponseBuilder: () => new SignInLimitError(`up to ${signInLimit.minutes} minutes`)
      }
    }
  }, async (request, reply) => {
    const errors: FieldErrors = {}
    const email = check(errors, 'email', field(request.body, 'email').toLowerCase(), { label: 'Email', required: true, max: 255, pattern: EMAIL, patternMessage: 'Enter an email address.' })
    const password = field(request.body, 'password')
    if (password.length === 0) errors.password = 'Password is required.'
    if (password.length > 1024) errors.password = 'Password is too long.'
    const next = nextPath(ctx, field(request.body, 'next'))
    const again = async (status: number): Promise<unknown> => {
      reply.header('cache-control', 'no-store')
      return await renderPage(ctx, request, reply, 'login', 'Sign in', { values: { email }, errors, next }, status)
    }
    if (hasErrors(errors)) return await again(422)

    // Everything below runs the same steps for an unknown email as for a real one:
    // the same backoff, one scrypt at today's cost, the same message.
    const address = request.ip
    const wait = await throttle.wait(email, address)
    if (wait > 0) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(wait / 60)) * 60))
      errors.form = `Too many failed sign-ins with this email from your address: sign-in is locked here for ${minutes(wait)}. Other addresses are not affected.`
      return await again(429)
    }
    const accounts = new AdminAccounts(ctx.tenancy.orm)
    const row = await accounts.credentials(email)
    const ok = await verifyPassword(password, row?.passwordHash ?? await dummyHash())
    if (row === null || !ok || !row.active) {
      await throttle.fail(email, address)
      errors.form = 'The email or password is wrong.'
      return await again(401)
    }
    const old = sessionToken(request)
    if (old !== null) await ctx.sessions.destroy(old)
    // Only while the password checked is still the account's: one changed meanwhile (which ends every session) wins.
    const token = await ctx.sessions.create(row.id, row.passwordHash)
    if (token === null) {
      errors.form = 'The email or password is wrong.'
      return await again(401)
    }
    await throttle.succeed(email, address)
    // Hashes made at an older cost are upgraded while the password is at hand (unless it changed meanwhile).
    const upgrade = needsRehash(row.passwordHash) ? await hashPassword(password) : null
    await accounts.signedIn(row.id, row.passwordHash, upgrade)
    reply.setCookie(ctx.cookieName, token, { path: ctx.cookiePath, httpOnly: true, sameSite: 'lax', secure: ctx.secureCookies, signed: true })
    return await reply.redirect(next, 303)
  })

  app.post('/logout', { config: { admin: 'signed-in' } }, async (request, reply) => {
    const token = sessionToken(request)
    if (token !== null) await ctx.sessions.destroy(token)
    reply.clearCookie(ctx.cookieName, { path: ctx.cookiePath, secure: ctx.secureCookies, httpOnly: true, sameSite: 'lax' })
    return await reply.redirect(ctx.prefix + '/login', 303)
  })
}
