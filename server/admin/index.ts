import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify'
import { createHash } from 'node:crypto'
import type {} from '@fastify/cookie'
import type {} from '@fastify/csrf-protection'
import './types.js'
import { loadAdminPlugins } from './admin-plugins.js'
import { packageRoot } from '../package-root.js'
import { adminAssets } from './ui/assets.js'
import { InvalidOptionError } from '../errors.js'
import { misuse } from '../misuse.js'
import { PERMISSIONS, type Permission } from '../entities/central/admin.entity.js'
import { tenancyRuntime } from '../tenancy.js'
import { AdminSessions } from './auth/sessions.js'
import { AuditLog } from './audit/audit-log.js'
import { OneTimeNotice } from './ui/one-time-notice.js'
import { SignInThrottle, DEFAULT_THROTTLE } from './auth/sign-in-throttle.js'
import type { AdminContext } from './context.js'
import { renderPage } from './ui/render.js'
import { sessionRoutes } from './auth/routes.js'
import { themeRoutes } from './ui/theme.js'
import { auditRoutes } from './audit/routes.js'
import { fleetRoutes } from './fleet/routes.js'
import { rolloutRoutes } from './fleet/rollout-routes.js'
import { dashboardRoutes } from './dashboard/routes.js'
import { clusterRoutes } from './clusters/routes.js'
import { tenantRoutes } from './tenants/routes.js'
import { tenantOperationRoutes } from './tenants/operations.js'
import { userRoutes } from './users/routes.js'
import { adminRoutes } from './admins/routes.js'
import { accountRoutes } from './account/routes.js'
import { moveRoutes } from './moves/routes.js'
import { bundleRoutes } from './moves/bundle-routes.js'
import { BundleUploads } from './moves/bundle-uploads.js'

export interface AdminOptions {
  /** URL prefix of the admin (default `/admin`). */
  prefix?: string
  /** Secret that signs the session and CSRF cookies: at least 32 characters. */
  cookieSecret: string
  /**
   * Cookies named `__Host-ft_admin` and `__Host-ft_csrf`, with the Secure flag
   * and Path=/ (default true). The `__Host-` prefix is what stops a page on a
   * tenant subdomain from planting admin cookies with `Domain=`. Browsers
   * accept Secure cookies from https:// and from http://localhost; set false
   * only to serve the admin over plain http on another host (a local demo):
   * the cookies are then `ft_admin` / `ft_csrf` without that protection.
   */
  secureCookies?: boolean
  /** How long a session lasts at most, in hours (default 12). */
  sessionHours?: number
  /** A session ends after this many minutes without a request (default 30). */
  idleMinutes?: number
  /** Sign-in attempts one address may make per window, whatever the account (default 30 per 10 minutes); then 429. */
  signInLimit?: { max: number, minutes: number }
  /** Cache compiled templates (default true). */
  production?: boolean
  /** Extra route modules, registered inside the admin with its context. */
  areas?: Array<(app: FastifyInstance, ctx: AdminContext) => void | Promise<void>>
}

const root = packageRoot()
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** The largest bundle the Import page takes (written to a temporary file as it arrives); larger ones go through `tenants:import`. */
const BUNDLE_UPLOAD_BYTES = 4 * 1024 ** 3

function fail (option: string, problem: string): never {
  throw new InvalidOptionError(option, problem)
}

async function admin (app: FastifyInstance, options: AdminOptions): Promise<void> {
  if (typeof options !== 'object' || options === null) fail('options', 'must be an object')
  if (typeof options.cookieSecret !== 'string' || options.cookieSecret.length < 32) fail('cookieSecret', 'must be a string of at least 32 characters')
  const prefix = options.prefix ?? '/admin'
  if (!/^\/[a-z0-9/_-]*[a-z0-9]$/.test(prefix)) fail('prefix', 'must be a path like /admin')
  const sessionHours = options.sessionHours ?? 12
  if (typeof sessionHours !== 'number' || sessionHours <= 0 || sessionHours > 24 * 30) fail('sessionHours', 'must be a number of hours from 0 to 720')
  const idleMinutes = options.idleMinutes ?? 30
  if (typeof idleMinutes !== 'number' || idleMinutes <= 0 || idleMinutes > sessionHours * 60) fail('idleMinutes', 'must be a number of minutes above 0 and at most sessionHours')
  const signInLimit = options.signInLimit ?? { max: 30, minutes: 10 }
  if (typeof signInLimit !== 'object' || signInLimit === null || !Number.isInteger(signInLimit.max) || signInLimit.max < 1 || typeof signInLimit.minutes !== 'number' || signInLimit.minutes <= 0) {
    fail('signInLimit', 'must be { max, minutes } with a whole max of at least 1 and minutes above 0')
  }
  if (!app.hasDecorator('tenancy')) throw misuse.adminWithoutTenancy()

  const secureCookies = options.secureCookies ?? true
  // The settings of the core the admin needs, read once here.
  const { centralDomains, clock, renames, database, strategy } = tenancyRuntime(app.tenancy).options
  const ctx: AdminContext = {
    tenancy: app.tenancy,
    centralDomains,
    clock,
    renamesKeepMs: renames.keepMs,
    hosts: Object.keys(database.hosts),
    defaultHost: database.defaultHost,
    sharedTables: strategy === 'shared',
    sessions: new AdminSessions(app.tenancy.orm, sessionHours * 3600_000, idleMinutes * 60_000),
    audit: new AuditLog(app.tenancy.orm),
    oneTime: new OneTimeNotice(options.cookieSecret, { name: secureCookies ? '__Host-ft_once' : 'ft_once', path: secureCookies ? '/' : prefix, secure: secureCookies }),
    prefix,
    secureCookies,
    cookieName: secureCookies ? '__Host-ft_admin' : 'ft_admin',
    cookiePath: secureCookies ? '/' : prefix,
    areas: new Set()
  }
  const throttle = new SignInThrottle(app.tenancy.orm, DEFAULT_THROTTLE)
  // Every impersonation link made, used, refused or ended goes to the audit log, under the admin who made it.
  const stopAuditingImpersonation = app.tenancy.impersonation.onUse(async (use) => {
    await ctx.audit.record({
      actor: use.admin.id === null ? null : { id: use.admin.id, email: use.admin.email ?? '' },
      action: `tenant.impersonation.${use.action}`,
      tenant: { key: use.tenant.key, identifier: use.tenant.identifier },
      change: { user: use.userId, ...(use.reason === undefined ? {} : { reason: use.reason }) }
    })
  })
  app.addHook('onClose', async () => { stopAuditingImpersonation() })

  const { cookie, csrf, formbody, helmet, multipart, rateLimit, view, Eta } = await loadAdminPlugins()
  await app.register(async (scope) => {
    await scope.register(cookie, { secret: options.cookieSecret })
    await scope.register(formbody, { bodyLimit: 64 * 1024 })
    await scope.register(csrf, {
      sessionPlugin: '@fastify/cookie',
      cookieKey: secureCookies ? '__Host-ft_csrf' : 'ft_csrf',
      cookieOpts: { path: ctx.cookiePath, httpOnly: true, sameSite: 'lax', secure: secureCookies, signed: true },
      // Tokens are bound to the session: a token minted for another session
      // (an attacker's own, planted with its secret) never passes here.
      getUserInfo: (request: FastifyRequest) => request.admin?.sessionId ?? 'signed-out',
      csrfOpts: { hmacKey: createHash('sha256').update('fastify-tenancy csrf\n' + options.cookieSecret).digest() },
      getToken: (request: FastifyRequest) => {
        const body = request.body as Record<string, unknown> | undefined
        const fromBody = body?._csrf
        return typeof fromBody === 'string' ? fromBody : request.headers['x-csrf-token'] as string | undefined
      }
    })
    // Only the routes that ask (sign-in) are limited, per address.
    await scope.register(rateLimit, { global: false })
    await scope.register(helmet, {
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          // The demo and local installs run on plain http://localhost.
          upgradeInsecureRequests: null
        }
      },
      crossOriginEmbedderPolicy: false
    })
    await scope.register(view, { engine: { eta: new Eta() }, root: `${root}/views`, propertyName: 'adminView', production: options.production ?? true })
    scope.decorateRequest('admin', null)

    // Every admin route is central, says who may use it, and checks the CSRF token when it changes state.
    scope.addHook('onRoute', (route) => {
      const config = (route.config ?? {}) as { admin?: string, tenancy?: string }
      if (route.url.startsWith(prefix + '/assets/')) config.admin = 'public'
      if (config.admin === undefined) throw misuse.adminRouteWithoutAccess(route.method, route.url)
      if (config.admin !== 'public' && config.admin !== 'signed-in' && !PERMISSIONS.includes(config.admin as Permission)) {
        throw misuse.adminRouteUnknownPermission(route.url, config.admin)
      }
      config.tenancy = 'central'
      route.config = config as typeof route.config
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      if (methods.includes('GET')) ctx.areas.add(route.url)
      if (methods.some((m) => !SAFE_METHODS.has(m))) {
        const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]
        route.preHandler = [scope.csrfProtection as preHandlerHookHandler, ...existing]
      }
    })

    adminAssets(scope, root)

    const authenticate: onRequestHookHandler = async function (request, reply) {
      const raw = request.cookies[ctx.cookieName]
      if (raw !== undefined) {
        const unsigned = request.unsignCookie(raw)
        if (unsigned.valid && unsigned.value !== null) request.admin = await ctx.sessions.load(unsigned.value)
      }
      const needs = request.routeOptions.config.admin ?? 'signed-in'
      if (needs === 'public') return
      if (request.admin === null) {
        if (request.method === 'GET' || request.method === 'HEAD') {
          return await reply.redirect(`${prefix}/login?next=${encodeURIComponent(request.url)}`, 303)
        }
        return await renderPage(ctx, request, reply, 'error', 'Signed out', { message: 'Your session has ended. Sign in again, then repeat what you were doing.' }, 401)
      }
      if (needs !== 'signed-in' && !request.admin.permissions.has(needs)) {
        return await renderPage(ctx, request, reply, 'error', 'Not allowed', { message: 'You do not have the permission this page needs. Ask an admin who manages admins.' }, 403)
      }
    }
    scope.addHook('onRequest', authenticate)

    scope.setErrorHandler(async (error: FastifyError, request, reply: FastifyReply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
      if (status >= 500) request.log.error({ err: error }, 'admin request failed')
      const message = error.code?.startsWith('FST_CSRF') === true
        ? 'This form has expired or did not come from this site. Go back, reload the page and try again.'
        : status === 404 ? 'There is nothing here.' : status >= 500 ? 'Something went wrong on our side; it has been logged.' : error.message
      return await renderPage(ctx, request, reply, 'error', status === 403 ? 'Not allowed' : 'Error', { message }, status)
    })
    scope.setNotFoundHandler({ preHandler: authenticate as unknown as preHandlerHookHandler }, async (request, reply) => {
      return await renderPage(ctx, request, reply, 'error', 'Not found', { message: 'There is nothing here.' }, 404)
    })

    sessionRoutes(scope, ctx, { throttle, signInLimit })
    themeRoutes(scope, ctx)
    dashboardRoutes(scope, ctx)
    tenantRoutes(scope, ctx)
    tenantOperationRoutes(scope, ctx)
    userRoutes(scope, ctx)
    adminRoutes(scope, ctx)
    accountRoutes(scope, ctx)
    clusterRoutes(scope, ctx)
    auditRoutes(scope, ctx)
    fleetRoutes(scope, ctx)
    rolloutRoutes(scope, ctx)
    moveRoutes(scope, ctx)
    await bundleRoutes(scope, ctx, new BundleUploads(multipart, BUNDLE_UPLOAD_BYTES))
    for (const area of options.areas ?? []) await area(scope, ctx)
  }, { prefix })
}

/** The landlord admin panel: `await app.register(adminPlugin, { cookieSecret })` after tenancyPlugin. */
export const adminPlugin = fp(admin, { fastify: '5.x', name: 'fastify-tenancy-admin', dependencies: ['fastify-tenancy'] })
export type { AdminContext } from './context.js'
