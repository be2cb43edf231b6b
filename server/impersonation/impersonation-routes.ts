import type { FastifyInstance, FastifyRequest } from 'fastify'
import { parse as parseCookies, serialize as serializeCookie } from 'cookie'
import { SESSION_TTL_MS, type Impersonation } from './impersonation.js'

/** The cookie holding an impersonation session's secret on a tenant's host. */
export const IMPERSONATION_COOKIE = 'tenancy_impersonation'
/** Where impersonation links land on a tenant app; `<path>/end` ends it. */
export const IMPERSONATION_PATH = '/_tenancy/impersonate'

/** The impersonation secret of a request, if it carries the cookie (other cookies are not parsed for nothing). */
const secretOf = (request: FastifyRequest): string | undefined => {
  const header = request.headers.cookie
  return header === undefined || !header.includes(IMPERSONATION_COOKIE) ? undefined : parseCookies(header)[IMPERSONATION_COOKIE]
}

/**
 * The tenant side of impersonation: the link's landing route, the route that
 * ends it, and the hook that fills `request.impersonation` (before the app's
 * own preValidation and preHandler hooks) on every request of the session.
 */
export function impersonationRoutes (app: FastifyInstance, impersonation: Impersonation): void {
  // Every request passes here, nearly all without the cookie: those go on
  // at once, with no promise (an async hook would make one per request).
  app.addHook('preValidation', (request, _reply, done) => {
    const tenant = request.tenant
    const secret = tenant === null ? undefined : secretOf(request)
    if (tenant === null || secret === undefined) { done(); return }
    impersonation.session(secret, tenant).then((session) => { request.impersonation = session; done() }, done)
  })

  // In a scope of their own: the end button is a plain form post, whose
  // (empty) urlencoded body the app may have no parser for.
  app.register(async (scope) => {
    if (!scope.hasContentTypeParser('application/x-www-form-urlencoded')) scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, _body, done) => { done(null, {}) })
    scope.get(IMPERSONATION_PATH, { config: { tenancy: 'tenant' } }, async (request, reply) => {
      const token = (request.query as Record<string, unknown>).token
      const tenant = request.tenant as NonNullable<typeof request.tenant>
      const { secret } = await impersonation.redeem(typeof token === 'string' ? token : '', tenant)
      reply.header('set-cookie', serializeCookie(IMPERSONATION_COOKIE, secret, {
        path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', maxAge: SESSION_TTL_MS / 1000
      }))
      return await reply.redirect('/', 303)
    })

    scope.post(`${IMPERSONATION_PATH}/end`, { config: { tenancy: 'tenant' } }, async (request, reply) => {
      const secret = secretOf(request)
      if (secret !== undefined) await impersonation.end(secret, request.tenant as NonNullable<typeof request.tenant>)
      reply.header('set-cookie', serializeCookie(IMPERSONATION_COOKIE, '', { path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', maxAge: 0 }))
      return await reply.redirect('/', 303)
    })
  })
}
