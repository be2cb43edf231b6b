import type { ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql'
import './types.js'
import { resolveOptions, type ResolvedOptions, type TenancyOptions, type RouteMode } from './options/index.js'
import { createTenancy, type TenancyRuntime } from './tenancy.js'
import { centralOrmFor, migrateCentral } from './database/central.js'
import { ensureCentralDatabase } from './database/central-database.js'
import { CentralRouteError, NoTenantContextError, TenantNotIdentifiedError } from './errors.js'
import { assertSingleHost, requestHost } from './identification/host.js'
import { assertServes } from './lifecycle/serving.js'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'
import { identityOf } from './renames/unknown-tenant.js'
import { loadSpanTagger, type SpanTagger } from './telemetry/tracing.js'
import { impersonationRoutes } from './impersonation/impersonation-routes.js'
import { declareTenancy, DEFAULT_TENANCY_NAME } from './tenancies.js'

type Done = (error?: Error) => void
/** Marks the onRequest hooks this plugin adds, so each registration's hook goes after the earlier ones'. */
const kTenancyHook = Symbol.for('fastify-tenancy.hook')
/** Where one registration keeps its scope and tenant on a request (each registration has its own symbols). */
interface Slots { scope: symbol, tenant: symbol }
type WithSlots = FastifyRequest & Record<symbol, unknown>
/** What a tenant request's response carries to its 'close' listener (one symbol per registration). */
interface Ended { request: WithSlots, tenant: Tenant, started: number }
type ClosingResponse = ServerResponse & Record<symbol, Ended | undefined>

/**
 * Register: options are checked, the central database is migrated, the
 * runtime is built and started, and `app.tenancy`, `request.tenant` and
 * `request.tenantEm` are declared. Then every route registered after this
 * gets a tenancy hook that resolves, enters and (on close) leaves.
 */
async function tenancy (app: FastifyInstance, rawOptions: TenancyOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  // A missing central database is made (when the role may); an unreachable one is a coded error naming database.url.
  await ensureCentralDatabase(options.database.url)
  const { orm, owned } = centralOrmFor(options)
  let runtime: TenancyRuntime
  try {
    if (options.migrateCentral) await migrateCentral(orm, options.database.url)
    runtime = createTenancy(options, orm, app.log)
  } catch (error) {
    if (owned) await orm.close(true)
    throw error
  }
  app.addHook('onClose', async () => {
    await runtime.close()
    if (owned) await orm.close(true)
  })
  await runtime.start()

  // Several registrations may live side by side (tenants, and teams inside
  // them): each keeps its request state under its own symbols, and only the
  // default one (named `tenants`) has the short names.
  const name = options.name
  const isDefault = name === DEFAULT_TENANCY_NAME
  const slots: Slots = { scope: Symbol(`fastify-tenancy.${name}.scope`), tenant: Symbol(`fastify-tenancy.${name}.tenant`) }
  const emOf = (request: FastifyRequest, what: string): EntityManager => {
    const scope = (request as WithSlots)[slots.scope] as TenantScope | null
    if (scope == null) throw new NoTenantContextError(what)
    return scope.em
  }
  app.decorateRequest(slots.scope, null)
  app.decorateRequest(slots.tenant, null)
  declareTenancy(app, {
    name,
    api: runtime.api,
    tenantOf: (request) => (request as WithSlots)[slots.tenant] as Tenant | null,
    emOf: (request) => emOf(request, `request.tenancies.${name}.em`)
  })
  if (isDefault) {
    app.decorate('tenancy', runtime.api)
    app.decorateRequest('tenant', null)
    app.decorateRequest('impersonation', null)
    app.decorateRequest('tenantEm', {
      getter (this: FastifyRequest) { return emOf(this, 'request.tenantEm') }
    })
  }

  // Present when the app has @opentelemetry/api: the active span gets tenant.id.
  const flow = requestFlow(runtime, options, await loadSpanTagger(), slots, isDefault, app.log)
  // Each route gets its own onRequest hook that knows the route's config
  // object: reading `request.routeOptions` on every request would build a
  // new object each time. The mode is read at request time, so a plugin's
  // later onRoute hook (the admin sets its routes central) still counts.
  app.addHook('onRoute', (route) => {
    route.config ??= {}
    const config = route.config as { tenancy?: RouteMode, tenancies?: Record<string, RouteMode | undefined> }
    const hook: onRequestHookHandler = isDefault
      ? function (request, reply, done) { flow.resolve(request, reply, config.tenancy ?? options.defaultRouteMode, done) }
      : function (request, reply, done) { flow.resolve(request, reply, config.tenancies?.[name] ?? options.defaultRouteMode, done) }
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    // First, but after the hooks of registrations made before this one: a
    // later tenancy (teams) resolves inside an earlier one's (tenants) context.
    let after = 0
    existing.forEach((h, i) => { if ((h as { [kTenancyHook]?: true })[kTenancyHook] === true) after = i + 1 })
    Object.assign(hook, { [kTenancyHook]: true })
    route.onRequest = [...existing.slice(0, after), hook, ...existing.slice(after)]
  })

  // The landing and end routes of impersonation links, and request.impersonation
  // (after the onRoute hook above, so they resolve their tenant too).
  if (isDefault && options.impersonation) impersonationRoutes(app, runtime.impersonation)
}

/** What happens to one request: resolve its tenant, enter that tenant's context, leave it when the response closes. */
function requestFlow (runtime: TenancyRuntime, options: ResolvedOptions, tagSpan: SpanTagger | null, slots: Slots, isDefault: boolean, appLog: FastifyBaseLogger): { resolve: (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, done: Done) => void } {
  const centralDomains = new Set(options.centralDomains)
  // Per registration: two tenancies (tenants, and teams inside them) each leave their own scope.
  const kEnded = Symbol(`fastify-tenancy.${options.name}.ended`)

  /** Finds the request's tenant (from the cache without a promise when it can) or decides the route may go on without one. */
  const resolve = (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, done: Done): void => {
    let found: Tenant | null | Promise<Tenant | null>
    try {
      assertSingleHost(request.raw.rawHeaders)
      if (mode === 'central') {
        if (!centralDomains.has(requestHost(request).name)) throw new CentralRouteError()
        done()
        return
      }
      found = runtime.identification.identify(request)
    } catch (error) {
      unknown(request, reply, error as Error, done)
      return
    }
    if (found instanceof Promise) {
      found.then((tenant) => { enter(request as WithSlots, reply, tenant, mode, done) }, (error) => { unknown(request, reply, error, done) })
    } else {
      enter(request as WithSlots, reply, found, mode, done)
    }
  }

  /**
   * A name nobody has now may be one a tenant had before a rename: it answers
   * 301 to the same path and query under the new name while it is kept.
   */
  const unknown = (request: FastifyRequest, reply: FastifyReply, error: Error, done: Done): void => {
    const identity = identityOf(error)
    if (identity === null) { done(error); return }
    runtime.renames.location(request, identity).then((location) => {
      if (location === null) done(error)
      else void reply.redirect(location, 301)
    }, () => { done(error) })
  }

  /** Opens the tenant's scope and runs the rest of the request inside its context. */
  const spanPrefix = isDefault ? 'tenant' : options.name
  const enter = (request: WithSlots, reply: FastifyReply, tenant: Tenant | null, mode: RouteMode, done: Done): void => {
    if (tenant === null) {
      done(mode === 'tenant' ? new TenantNotIdentifiedError() : undefined)
      return
    }
    try {
      assertServes(tenant)
      // Answered with 503 (unless let through by address or bypass cookie).
      if (runtime.maintenance.gate(request, reply, tenant)) return
      // A request's logger is its own child (unless a childLoggerFactory hands out the app's): it may be tagged in place.
      const scope = runtime.scopes.open(tenant, request.log, request.log !== appLog)
      request[slots.tenant] = tenant
      request[slots.scope] = scope
      if (isDefault) request.tenant = tenant
      request.log = scope.log
      tagSpan?.(tenant, spanPrefix)
      // The response's 'close' comes after it finished or was aborted: the one
      // moment the connection is surely no longer needed. One listener does
      // both jobs of a request's end: the tenant's request stats (for
      // app.tenancy.stats()), and reverting the scope.
      // Timed from here: Fastify keeps no start time when it has no logger and no onResponse hook.
      // A response closes once, so one shared listener (no per-request closure, no once() wrapper)
      // finds its request through the response.
      const res = reply.raw as ClosingResponse
      res[kEnded] = { request, tenant, started: performance.now() }
      res.on('close', ended)
      // Everything after this hook (other hooks, the handler, what they
      // start) runs inside the tenant's context.
      runtime.context.run(scope, done)
    } catch (error) {
      done(error as Error)
    }
  }

  /** The response's 'close' listener (`this` is the response): the request's stats, and its scope reverted. */
  function ended (this: ClosingResponse): void {
    const end = this[kEnded]
    if (end === undefined) return
    this[kEnded] = undefined
    runtime.requestStats.record(end.tenant, performance.now() - end.started, this.statusCode)
    leave(end.request)
  }

  /** Reverts the scope's bootstrappers (gives the connection back), once. */
  const leave = (request: WithSlots): void => {
    const scope = request[slots.scope] as TenantScope | null
    if (scope == null) return
    request[slots.scope] = null
    runtime.scopes.close(scope)
  }

  return { resolve }
}

/** The fastify-tenancy plugin: `await app.register(tenancyPlugin, options)`. */
export const tenancyPlugin = fp(tenancy, { fastify: '5.x', name: 'fastify-tenancy' })
export default tenancyPlugin
