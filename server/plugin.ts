import type { ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify'
import type { EntityManager } from '@mikro-orm/postgresql'
import './types.js'
import { resolveOptions, type ResolvedOptions, type TenancyOptions, type RouteMode } from './options/index.js'
import { createTenancy, type TenancyRuntime } from './tenancy.js'
import { centralOrmFor, migrateCentral } from './database/central.js'
import { ensureCentralDatabase } from './database/central-database.js'
import { CentralRouteError, NoTenantContextError, TenantNotIdentifiedError } from './errors.js'
import { misuse } from './misuse.js'
import { assertOneAuthority, assertSingleHost, requestHost } from './identification/host.js'
import { assertServes } from './lifecycle/serving.js'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'
import { identityOf } from './identification/unknown-tenant.js'
import { loadSpanTagger, type SpanTagger } from './telemetry/tracing.js'
import { addTenantSource } from './telemetry/span-tenants.js'
import { impersonationRoutes, impersonationSecret } from './impersonation/impersonation-routes.js'
import { declareTenancy, DEFAULT_TENANCY_NAME } from './tenancies.js'
import { assertEveryRouteGuarded, assertHooksKept, assertRouteTenancy, guardMarker, guardRoute, hasRoutes, remember, type GuardedRouteEntry } from './route-guard.js'
import { asUnavailable, unavailableFault, UNAVAILABLE_BODY, UNAVAILABLE_HEADERS } from './database/unavailable.js'
import { PG, pgCode } from './database/pg-errors.js'
import { FaultLog } from './telemetry/fault-log.js'
import { requiredMigrations, withMigrations, type TenantMigrationSet } from './lifecycle/migration-gate.js'

type Done = (error?: Error) => void
/** Where one registration keeps its scope and tenant on a request, and whether it decided (each registration has its own symbols). */
interface Slots { scope: symbol, tenant: symbol, decided: symbol }
/** What a route's config says to fastify-tenancy: its mode, or its mode and the tenant migrations it requires. */
type RouteTenancy = RouteMode | { mode?: RouteMode, requires?: string | readonly string[] }
interface RouteConfig { tenancy?: RouteTenancy, tenancies?: Record<string, RouteTenancy | undefined> }
type WithSlots = FastifyRequest & Record<symbol, unknown>
/** What a tenant request's response carries to its 'close' listener (one symbol per registration). */
interface Ended { request: WithSlots, tenant: Tenant, started: number, entered: boolean }
type ClosingResponse = ServerResponse & Record<symbol, Ended | undefined>

/**
 * Register: options are checked, the central database is migrated, the
 * runtime is built and started, and `app.tenancy`, `request.tenant` and
 * `request.tenantEm` are declared. Every route then gets the tenancy
 * decision (resolve, enter, and on close leave): its own onRequest hook when
 * it is registered after this, else the preParsing fallback; a route neither
 * can reach fails `ready()`.
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
  const slots: Slots = { scope: Symbol(`fastify-tenancy.${name}.scope`), tenant: Symbol(`fastify-tenancy.${name}.tenant`), decided: Symbol(`fastify-tenancy.${name}.decided`) }
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
    // Span processors (tenantSpanProcessor) tag each span from this registration's tenant context.
    const stopTagging = addTenantSource(() => runtime.context.current())
    app.addHook('onClose', async () => { stopTagging() })
    app.decorate('tenancy', runtime.api)
    app.decorateRequest('tenant', null)
    app.decorateRequest('impersonation', null)
    app.decorateRequest('tenantEm', {
      getter (this: FastifyRequest) { return emOf(this, 'request.tenantEm') }
    })
  }

  // Present when the app has @opentelemetry/api: the active span gets tenant.id.
  const faults = new FaultLog(app.log)
  const flow = requestFlow(runtime, options, await loadSpanTagger(), slots, isDefault, app.log, faults)
  const tenancyOf = (config: RouteConfig | undefined): RouteTenancy | undefined => isDefault ? config?.tenancy : config?.tenancies?.[name]
  const modeOf = (config: RouteConfig | undefined): RouteMode => {
    const own = tenancyOf(config)
    return (typeof own === 'object' ? own.mode : own) ?? options.defaultRouteMode
  }
  /** The tenant migrations a route requires: the plugin's `requires`, then its own. */
  const requiresOf = (config: RouteConfig | undefined): readonly string[] => {
    const own = tenancyOf(config)
    return requiredMigrations(options.requires, typeof own === 'object' ? own.requires : undefined)
  }
  // Set by the route's own hook: the fallback below has nothing left to do.
  app.decorateRequest(slots.decided, false)
  // Routes that exist already (declared before the plugin loaded) get no hook
  // of their own: only then is the fallback below needed, and paid for.
  const earlier = hasRoutes(app)
  // The routes that get their own hook, to find at ready any that got none.
  const seen = new Set<string>()
  /** The configs of routes with their own hook, whose required migrations are checked at ready. */
  const requiring: RouteConfig[] = []
  /** Routes with their own hook: at ready each must still have it, and a valid config.tenancy. */
  const guarded: GuardedRouteEntry[] = []

  // The fast path: each route registered from now on (here and in every
  // plugin registered later) gets its own onRequest hook that knows the
  // route's config object (reading `request.routeOptions` on every request
  // would build a new object each time). The mode is read at request time, so
  // a plugin's later onRoute hook (the admin sets its routes central) still counts.
  app.addHook('onRoute', (route) => {
    remember(seen, route.method, route.url)
    route.config ??= {}
    const config = route.config as RouteConfig
    requiring.push(config)
    // Read at the first request, once every onRoute hook has had its say.
    let required: readonly string[] | undefined
    const hook: onRequestHookHandler = function (request, reply, done) {
      (request as WithSlots)[slots.decided] = true
      required ??= requiresOf(config)
      flow.resolve(request, reply, modeOf(config), required, done)
    }
    // First, but after the hooks of registrations made before this one (a
    // later tenancy, teams, resolves inside an earlier one's, tenants, context),
    // and kept there when a later onRoute hook of the app assigns route.onRequest.
    guardRoute(route, hook)
    guarded.push({ method: route.method, url: route.url, route, hook })
    // A database the route could not reach: 503 answered here (no stack logged per request); any other error goes on as before.
    if (isDefault) route.errorHandler = unavailableHandler(route.errorHandler)
  })

  // The fallback, so that registration order never leaves a route open: routes
  // declared before the plugin loaded (`app.register(plugin)` without await,
  // then `app.get`, the CommonJS way; routes declared earlier; plugins
  // registered earlier) have no hook of their own, but a lifecycle hook added
  // here reaches every route of this instance and of every plugin under it,
  // earlier ones included. It decides in preParsing, after the onRequest hooks,
  // and before the body is read, any validation and the handler; a route with
  // its own hook passes through. Added only when such routes exist, so the
  // usual order (await the plugin, then routes) pays nothing for it.
  if (earlier) {
    const fallen = new WeakSet<object>()
    app.addHook('preParsing', function fastifyTenancyFallback (request, reply, payload, done) {
      if ((request as WithSlots)[slots.decided] === true || request.is404) { done(null, payload); return }
      const route = request.routeOptions
      if (!fallen.has(route.config)) {
        fallen.add(route.config)
        request.log.warn(`fastify-tenancy: route ${String(route.method)} ${String(route.url)} was declared before the plugin loaded, so its tenant is decided in preParsing (after onRequest hooks); register (and await) fastify-tenancy before declaring routes to decide it in onRequest`)
      }
      (request as WithSlots)[slots.decided] = true
      flow.resolve(request, reply, modeOf(route.config as RouteConfig), requiresOf(route.config as RouteConfig), (error) => {
        if (error === undefined) done(null, payload); else done(error)
      })
    })
    // Marks the contexts the fallback reaches (see route-guard.ts).
    app.addHook('onTimeout', guardMarker(name))
  }
  // Whatever route it comes from and whatever error handler the app has, a
  // database that cannot be reached is FST_TENANCY_DATABASE_UNAVAILABLE (503,
  // Retry-After) in the body, never the driver's message, address or SQL;
  // the detail goes to the log once per burst. onError runs before any error
  // handler and only for errors, so it costs nothing on other requests.
  if (isDefault) {
    app.addHook('onError', function fastifyTenancyDatabaseFaults (request, reply, error, done) {
      const tenant = (request as WithSlots)[slots.tenant] as Tenant | null
      const place = tenant === null ? 'the database' : `tenant database host "${tenant.databaseHost ?? options.database.defaultHost}"`
      const fault = unavailableFault(error)
      if (fault !== null) {
        faults.report(place, fault)
        asUnavailable(error)
        done()
        return
      }
      // A table that is not there may be a schema tenant's schema that is gone (dropped by hand): like a missing database, 503.
      const code = pgCode(error)
      const scope = (request as WithSlots)[slots.scope] as TenantScope | null
      if ((code === PG.UNDEFINED_TABLE || code === PG.INVALID_SCHEMA_NAME) && tenant !== null && scope != null) {
        runtime.schemaGone(tenant, scope.em).then((gone) => {
          if (gone) {
            faults.report(place, { kind: 'database-missing', code: code as string, address: null, detail: `the schema of tenant "${tenant.identifier}" does not exist: ${error.message}` })
            asUnavailable(error)
          }
          done()
        }, () => { done() })
        return
      }
      done()
    })
  }
  // At ready, a route with neither its own hook nor the fallback fails ready() (see route-guard.ts).
  app.addHook('onReady', async function fastifyTenancyRouteCheck () {
    assertEveryRouteGuarded(app, { registration: name, seen, fallback: earlier })
    assertHooksKept(guarded)
    // A mode that is not one (a typo, 'tenants') would serve the route without a tenant: ready() fails instead.
    for (const { method, url, route } of guarded) assertRouteTenancy(tenancyOf((route as RouteOptions).config as RouteConfig), `${String(method)} ${url}`, isDefault ? 'config.tenancy' : `config.tenancies.${name}`)
  })
  // A required migration that does not exist (a typo) would refuse every request: ready() fails instead.
  app.addHook('onReady', async function fastifyTenancyRequiredMigrations () {
    const known = new Set(await runtime.knownMigrations())
    const unknown = [...new Set([...requiresOf(undefined), ...requiring.flatMap((config) => requiresOf(config))])].filter((n) => !known.has(n))
    requiring.length = 0
    if (unknown.length > 0) throw misuse.unknownRequiredMigrations(unknown)
  })

  // The landing and end routes of impersonation links, and request.impersonation
  // (after the onRoute hook above, so they resolve their tenant too).
  if (isDefault && options.impersonation) impersonationRoutes(app, runtime.impersonation)
}

/** What happens to one request: resolve its tenant, enter that tenant's context, leave it when the response closes. */
function requestFlow (
  runtime: TenancyRuntime, options: ResolvedOptions, tagSpan: SpanTagger | null, slots: Slots, isDefault: boolean, appLog: FastifyBaseLogger, faults: FaultLog
): { resolve: (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, required: readonly string[], done: Done) => void } {
  const centralDomains = new Set(options.centralDomains)
  const impersonating = isDefault && options.impersonation

  /**
   * The central database could not be asked (tenant lookup, a former name):
   * 503 FST_TENANCY_DATABASE_UNAVAILABLE with Retry-After, answered here so
   * no error handler logs a stack per request; the detail is logged once per burst.
   */
  const unavailable = (reply: FastifyReply, error: unknown, done: Done): void => {
    const fault = unavailableFault(error)
    if (fault === null) { done(error as Error); return }
    faults.report('the central database', fault)
    reply.code(503).headers(UNAVAILABLE_HEADERS).send(UNAVAILABLE_BODY)
  }
  // Per registration: two tenancies (tenants, and teams inside them) each leave their own scope.
  const kEnded = Symbol(`fastify-tenancy.${options.name}.ended`)

  /** Finds the request's tenant (from the cache without a promise when it can) or decides the route may go on without one. */
  const resolve = (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, required: readonly string[], done: Done): void => {
    let found: Tenant | null | Promise<Tenant | null>
    try {
      assertSingleHost(request.raw.rawHeaders)
      assertOneAuthority(request.raw.url, request.raw.headers.host)
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
      found.then((tenant) => { enter(request as WithSlots, reply, tenant, mode, required, done) }, (error) => {
        if (identityOf(error) === null) unavailable(reply, error, done)
        else unknown(request, reply, error, done)
      })
    } else {
      enter(request as WithSlots, reply, found, mode, required, done)
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
      else reply.redirect(location, 301)
    }, (failure) => {
      // Whether the name redirects cannot be told without the database: 503, not a 404 that may be wrong.
      if (unavailableFault(failure) !== null) unavailable(reply, failure, done)
      else done(error)
    })
  }

  /** Opens the tenant's scope and runs the rest of the request inside its context. */
  const spanPrefix = isDefault ? 'tenant' : options.name
  const enter = (request: WithSlots, reply: FastifyReply, tenant: Tenant | null, mode: RouteMode, required: readonly string[], done: Done): void => {
    if (tenant === null) {
      // Only a universal route goes on without a tenant (a mode that is none, on a route ready() could not check, fails closed).
      done(mode === 'universal' ? undefined : new TenantNotIdentifiedError())
      return
    }
    // The tenant's request stats count every answer it gets from here on, a
    // 503 of a hold, maintenance or a migration included, not only those of
    // requests that reached its scope. One shared listener (no per-request
    // closure, no once() wrapper) finds its request through the response.
    const res = reply.raw as ClosingResponse
    const end = res[kEnded]
    if (end === undefined) {
      // Timed from here: Fastify keeps no start time when it has no logger and no onResponse hook.
      res[kEnded] = { request, tenant, started: performance.now(), entered: false }
      res.on('close', ended)
    } else {
      end.tenant = tenant
    }
    // A move holds the tenant's requests at its switch: this one waits (bounded), then goes on with the tenant as it is then.
    if (tenant.heldAt != null) {
      runtime.hold.wait(tenant).then((fresh) => { enter(request, reply, fresh, mode, required, done) }, (error) => { done(error) })
      return
    }
    let admitted: TenantMigrationSet | null | Promise<TenantMigrationSet | null>
    try {
      assertServes(tenant)
      // Answered with 503 (unless let through by address or bypass cookie).
      if (runtime.maintenance.gate(request, reply, tenant)) return
      // A tenant being migrated: wait (bounded) for the end. A required migration it lacks: 503 FST_TENANCY_MIGRATING.
      admitted = runtime.migrationGate.admit(tenant, required)
    } catch (error) {
      done(error as Error)
      return
    }
    if (admitted instanceof Promise) {
      admitted.then((set) => { serve(request, reply, tenant, set, done) }, (error: Error) => {
        // Nothing required: a record that cannot be read now does not stop the request (it only lacks `tenant.migrations`).
        if (required.length === 0 && (error as { code?: string }).code !== 'FST_TENANCY_MIGRATING') serve(request, reply, tenant, null, done)
        else done(error)
      })
      return
    }
    serve(request, reply, tenant, admitted, done)
  }

  /** Enters the tenant's scope and runs the rest of the request there. */
  const serve = (request: WithSlots, reply: FastifyReply, tenant: Tenant, migrations: TenantMigrationSet | null, done: Done): void => {
    try {
      if (migrations !== null) withMigrations(tenant, migrations)
      // A request's logger is its own child (unless a childLoggerFactory hands out the app's): it may be tagged in place.
      const scope = runtime.scopes.open(tenant, request.log, request.log !== appLog)
      request[slots.tenant] = tenant
      request[slots.scope] = scope
      if (isDefault) request.tenant = tenant
      request.log = scope.log
      tagSpan?.(tenant, spanPrefix, request)
      // The response's 'close' (listened to since enter) comes after it
      // finished or was aborted: the one moment the connection is surely no
      // longer needed. It then also reverts the scope.
      const end = (reply.raw as ClosingResponse)[kEnded]
      if (end !== undefined) { end.tenant = tenant; end.entered = true }
      runtime.hold.entered(tenant.key)
      // Everything after this hook (other hooks, the handler, what they
      // start) runs inside the tenant's context.
      const secret = impersonating ? impersonationSecret(request) : undefined
      if (secret === undefined) { runtime.context.run(scope, done); return }
      // A request of an impersonation session (it carries the cookie): request.impersonation before the app's hooks.
      runtime.context.run(scope, () => {
        runtime.impersonation.session(secret, tenant).then((session) => { request.impersonation = session; done() }, done)
      })
    } catch (error) {
      done(error as Error)
    }
  }

  /** The response's 'close' listener (`this` is the response): the request's stats, and its scope reverted. */
  function ended (this: ClosingResponse): void {
    const end = this[kEnded]
    if (end === undefined) return
    this[kEnded] = undefined
    if (end.entered) runtime.hold.left(end.tenant.key)
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

/**
 * A route's error handler that answers FST_TENANCY_DATABASE_UNAVAILABLE itself
 * (already made safe by the onError hook) and hands every other error to the
 * route's own handler, or on to the app's.
 */
function unavailableHandler (own: RouteOptions['errorHandler']): NonNullable<RouteOptions['errorHandler']> {
  return function fastifyTenancyUnavailable (this: FastifyInstance, error, request, reply) {
    if (error.code === 'FST_TENANCY_DATABASE_UNAVAILABLE') {
      reply.code(503).headers(UNAVAILABLE_HEADERS).send(UNAVAILABLE_BODY)
      return
    }
    if (own !== undefined) return own.call(this, error, request, reply)
    throw error
  }
}

/** The fastify-tenancy plugin: `await app.register(tenancyPlugin, options)`. */
export const tenancyPlugin = fp(tenancy, { fastify: '5.x', name: 'fastify-tenancy' })
export default tenancyPlugin
