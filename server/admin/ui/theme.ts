import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AdminContext } from '../context.js'
import { field } from './forms.js'

export const THEMES = ['auto', 'light', 'dark'] as const
export type Theme = typeof THEMES[number]
const COOKIE = 'ft_theme'

/** The operator's remembered choice; 'auto' (follow prefers-color-scheme) when none. */
export function themeOf (request: FastifyRequest): Theme {
  const value = request.cookies?.[COOKIE]
  return value === 'light' || value === 'dark' ? value : 'auto'
}

/** The theme switch: a plain form (no JavaScript needed) that remembers the choice in a cookie for a year. */
export function themeRoutes (app: FastifyInstance, ctx: AdminContext): void {
  app.post('/theme', { config: { admin: 'public' } }, async (request, reply) => {
    const theme = field(request.body, 'theme')
    const back = field(request.body, 'back')
    // Only a path inside the admin: never an open redirect.
    const to = back.startsWith(ctx.prefix) && !back.startsWith('//') && !back.includes('\\') ? back : ctx.prefix
    if (theme === 'light' || theme === 'dark') {
      // Only a colour preference: not secret, so a plain cookie is enough.
      reply.setCookie(COOKIE, theme, { path: ctx.cookiePath, sameSite: 'lax', secure: ctx.secureCookies, httpOnly: true, maxAge: 365 * 24 * 3600 })
    } else {
      reply.clearCookie(COOKIE, { path: ctx.cookiePath, sameSite: 'lax', secure: ctx.secureCookies, httpOnly: true })
    }
    return await reply.redirect(to, 303)
  })
}
