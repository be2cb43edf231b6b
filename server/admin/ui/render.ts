import type { FastifyReply, FastifyRequest } from 'fastify'
import '../types.js'
import type { FlashMessage } from '../auth/sessions.js'
import type { AdminContext } from '../context.js'
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
export async function renderPage (
  ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, view: string, title: string, model: Record<string, unknown> = {}, status = 200
): Promise<FastifyReply> {
  // A refusal asked for by admin.js comes back as a notice it shows in place.
  if (view === 'error' && wantsJson(request)) return await reply.status(status).send({ ok: false, notice: { type: 'error', text: String(model.message ?? title) } } satisfies ActionResult)
  const admin = request.admin
  const flash = admin === null || admin.hasFlash === false ? [] : await ctx.sessions.takeFlash(admin.sessionId)
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

/** What an action answers admin.js (which asks with `Accept: application/json`) instead of a redirect. */
export interface ActionResult {
  ok: boolean
  /** Shown as a toast. */
  notice: FlashMessage | null
  /** The page to show next: the same page is drawn again in place, another one is opened. */
  location?: string
  /** A secret shown once (a generated password), in the dialog rather than a toast that fades. */
  once?: string
}

/** Whether the request comes from admin.js and wants the result as JSON rather than a page. */
export function wantsJson (request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').startsWith('application/json')
}

/**
 * Queues a notice for the next page, then redirects there (post-redirect-get);
 * for admin.js, answers the notice and the next page's address as JSON.
 */
export async function redirectWith (ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, to: string, flash?: FlashMessage): Promise<FastifyReply> {
  if (wantsJson(request)) return await reply.send({ ok: flash?.type !== 'error', notice: flash ?? null, location: to } satisfies ActionResult)
  if (flash !== undefined && request.admin !== null) await ctx.sessions.pushFlash(request.admin.sessionId, flash)
  return reply.redirect(to, 303)
}

/**
 * Shows a secret once (a generated password): to admin.js in its answer, to
 * a plain form through an encrypted cookie the next page reads and clears.
 * Never in the session's flash, which is a database row.
 */
export async function revealOnce (ctx: AdminContext, request: FastifyRequest, reply: FastifyReply, to: string, text: string): Promise<FastifyReply> {
  reply.header('cache-control', 'no-store')
  if (wantsJson(request)) return await reply.send({ ok: true, notice: null, location: to, once: text } satisfies ActionResult)
  ctx.oneTime.set(reply, text)
  return reply.redirect(to, 303)
}
