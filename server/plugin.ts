import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import './types.js'
import { resolveOptions, type TenancyOptions, type RouteMode } from './options.js'
import { Tenancy } from './tenancy.js'
import { createCentralOrm, migrateCentral } from './database/central.js'
import { CentralRouteError, NoTenantContextError, TenantNotIdentifiedError } from './errors.js'
import { requestHost } from './identification/host.js'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'
import { identityOf } from './renames/unknown-tenant.js'
import { loadSpanTagger } from './telemetry/tracing.js'
import { impersonationRoutes } from './impersonation/impersonation-routes.js'

const kScope = Symbol('fastify-tenancy.scope')
type WithScope = FastifyRequest & { [kScope]?: TenantScope | null }

async function tenancy (app: FastifyInstance, rawOptions: TenancyOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  const orm = createCentralOrm({ url: options.database.url, debug: options.database.debug })
  try {
    if (options.migrateCentral) await migrateCentral(orm)
  } catch (error) {
    await orm.close(true)
    throw error
  }
  let runtime: Tenancy
  try {
    runtime = new Tenancy(options, orm, app.log)
  } catch (error) {
    await orm.close(true)
    throw error
  }
  app.addHook('onClose', async () => {
    await runtime.close()
    await orm.close(true)
  })
  await runtime.start()

  app.decorate('tenancy', runtime)
  app.decorateRequest('tenant', null)
  app.decorateRequest('impersonation', null)
  app.decorateRequest(kScope, null)
  app.decorateRequest('tenantEm', {
    getter (this: WithScope) {
      const scope = this[kScope]
      if (scope == null) throw new NoTenantContextError('request.tenantEm')
      return scope.em
    }
  })

  const centralDomains = new Set(options.centralDomains)
  // Present when the app has @opentelemetry/api: the active span gets tenant.id.
  const tagSpan = await loadSpanTagger()

  // Custom bootstrappers may hold something per request: then every tenant
  // request is reverted when its response closes. The shipped ones only need
  // it once the database was used, which saves a listener on most requests.
  const revertAlways = options.bootstrappers.length > 0

  const enter = (request: WithScope, reply: FastifyReply, tenant: Tenant | null, mode: RouteMode, done: (error?: Error) => void): void => {
    if (tenant === null) {
      if (mode === 'tenant') { done(new TenantNotIdentifiedError()); return }
      done()
      return
    }
    try {
      runtime.assertServes(tenant)
      // Answered with 503 (or let through by address or bypass cookie).
      if (runtime.maintenanceMode.gate(request, reply, tenant)) return
      const scope = runtime.openScope(tenant, request.log)
      request.tenant = tenant
      request[kScope] = scope
      request.log = scope.log
      tagSpan?.(tenant)
      // The response's 'close' comes after it finished or was aborted: the one
      // moment the connection is surely no longer needed.
      const leaveOnClose = (): void => { reply.raw.once('close', () => { leave(request) }) }
      if (revertAlways) leaveOnClose()
      else scope.onFirstLease = leaveOnClose
      // Everything after this hook (other hooks, the handler, what they
      // start) runs inside the tenant's context.
      runtime.context.run(scope, done)
    } catch (error) {
      done(error as Error)
    }
  }

  const resolve = (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, done: (error?: Error) => void): void => {
    let found: Tenant | null | Promise<Tenant | null>
    try {
      if (mode === 'central') {
        if (!centralDomains.has(requestHost(request).name)) throw new CentralRouteError()
        done()
        return
      }
      found = runtime.identify(request)
    } catch (error) {
      unknown(request, reply, error as Error, done)
      return
    }
    if (found instanceof Promise) {
      found.then((tenant) => enter(request, reply, tenant, mode, done), (error) => unknown(request, reply, error, done))
    } else {
      enter(request, reply, found, mode, done)
    }
  }

  // A name nobody has now may be one a tenant had before a rename: it answers
  // 301 to the same path and query under the new name while it is kept.
  const unknown = (request: FastifyRequest, reply: FastifyReply, error: Error, done: (error?: Error) => void): void => {
    const identity = identityOf(error)
    if (identity === null) { done(error); return }
    runtime.renames.location(request, identity).then((location) => {
      if (location === null) done(error)
      else void reply.redirect(location, 301)
    }, () => { done(error) })
  }

  const leave = (request: WithScope): void => {
    const scope = request[kScope]
    if (scope == null) return
    request[kScope] = null
    runtime.closeScope(scope)
  }

  app.addHook('onResponse', (request, reply, done) => {
    if (request.tenant !== null) runtime.requestStats.record(request.tenant, reply.elapsedTime, reply.statusCode)
    done()
  })

  // Each route gets its own onRequest hook that knows the route's config
  // object: reading `request.routeOptions` on every request would build a
  // new object each time. The mode is read at request time, so a plugin's
  // later onRoute hook (the admin sets its routes central) still counts.
  app.addHook('onRoute', (route) => {
    route.config ??= {}
    const config = route.config as { tenancy?: RouteMode }
    const hook: onRequestHookHandler = function (request, reply, done) {
      resolve(request, reply, config.tenancy ?? options.defaultRouteMode, done)
    }
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    route.onRequest = [hook, ...existing]
  })

  // The landing and end routes of impersonation links, and request.impersonation
  // (after the onRoute hook above, so they resolve their tenant too).
  if (options.impersonation) impersonationRoutes(app, runtime.impersonation)
}

/** The fastify-tenancy plugin: `await app.register(tenancyPlugin, options)`. */
export const tenancyPlugin = fp(tenancy, { fastify: '5.x', name: 'fastify-tenancy' })
export default tenancyPlugin
