import type { FastifyInstance, FastifyRequest } from 'fastify'
import { parse as parseCookies, serialize as serializeCookie } from 'cookie'
import { SESSION_TTL_MS, type Impersonation } from './impersonation.js'

/** The cookie holding an impersonation session's secret on a tenant's host. */
export const IMPERSONATION_COOKIE = 'tenancy_impersonation'
/** Where impersonation links land on a tenant app; `<path>/end` ends it. */
export const IMPERSONATION_PATH = '/_tenancy/impersonate'

/** The impersonation secret of a request, if it carries the cookie (other cookies are not parsed for nothing). */
export const impersonationSecret = (request: FastifyRequest): string | undefined => {
  const header = request.headers.cookie
  return header === undefined || !header.includes(IMPERSONATION_COOKIE) ? undefined : parseCookies(header)[IMPERSONATION_COOKIE]
}

/**
 * The tenant side of impersonation: the link's landing route and the route
 * that ends it. `request.impersonation` is filled by the request flow as it
 * enters the tenant (see plugin.ts), before any hook of the app that runs
 * inside the tenant, so no hook of its own runs on every request.
 */
export function impersonationRoutes (app: FastifyInstance, impersonation: Impersonation): void {
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
      const secret = impersonationSecret(request)
      if (secret !== undefined) await impersonation.end(secret, request.tenant as NonNullable<typeof request.tenant>)
      reply.header('set-cookie', serializeCookie(IMPERSONATION_COOKIE, '', { path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', maxAge: 0 }))
      return await reply.redirect('/', 303)
    })
  })
}
