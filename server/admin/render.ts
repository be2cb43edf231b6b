import type { FastifyReply, FastifyRequest } from 'fastify'
import './types.js'
import type { FlashMessage } from './sessions.js'
import type { AdminContext } from './context.js'
import { breadcrumbsFor, navigationFor, type Crumb, type NavGroup } from './navigation.js'
import { themeOf, type Theme } from './theme.js'

/** What every admin page gets besides its own view model. */
export interface PageModel {
  title: string
  prefix: string
  admin: { name: string, email: string } | null
  nav: NavGroup[]
  crumbs: Crumb[]
  flash: FlashMessage[]
  csrf: string
  /** The operator's choice of colours; 'auto' follows the system (prefers-color-scheme). */
  theme: Theme
  /** The page's own URL, for forms that come back to it (the theme switch). */
  url: string
}

/**
 * Renders `views/admin/<view>.eta` inside the admin layout, with navigation,
 * breadcrumbs, flash notices and a CSRF token. A model may give its own
 * `crumbs`; otherwise they follow the URL.
 */
export async function renderPage (ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, view: string, title: string, model: Record<string, unknown> = {}, status = 200): Promise<FastifyReply> {
  const admin = request.admin
  const flash = admin === null ? [] : await ctx.sessions.takeFlash(admin.sessionId)
  const page: PageModel = {
    title,
    prefix: ctx.prefix,
    admin: admin === null ? null : { name: admin.name, email: admin.email },
    nav: admin === null ? [] : navigationFor(admin, ctx.prefix, request.url, ctx.areas),
    crumbs: admin === null ? [] : (model.crumbs as Crumb[] | undefined) ?? breadcrumbsFor(ctx.prefix, request.url, title),
    flash,
    csrf: csrfToken(request, reply),
    theme: themeOf(request),
    url: request.url
  }
  const html = await reply.adminViewAsync(`admin/${view}.eta`, { ...model, page })
  return reply.status(status).type('text/html; charset=utf-8').send(html)
}

/** A CSRF token for the page's forms, bound to the session; none on an error page rendered before cookies were read. */
function csrfToken (request: FastifyRequest, reply: FastifyReply): string {
  try {
    return reply.generateCsrf({ userInfo: request.admin?.sessionId ?? 'signed-out' })
  } catch {
    return ''
  }
}

/** Queues a notice for the next page, then redirects there (post-redirect-get). */
export async function redirectWith (ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, to: string, flash?: FlashMessage): Promise<FastifyReply> {
  if (flash !== undefined && request.admin !== null) await ctx.sessions.pushFlash(request.admin.sessionId, flash)
  return reply.redirect(to, 303)
}
