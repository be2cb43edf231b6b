import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import './types.js'
import { resolveOptions, type ResolvedOptions, type TenancyOptions, type RouteMode } from './options.js'
import { createTenancy, type TenancyRuntime } from './tenancy.js'
import { centralOrmFor, migrateCentral } from './database/central.js'
import { CentralRouteError, NoTenantContextError, TenantNotIdentifiedError } from './errors.js'
import { requestHost } from './identification/host.js'
import { assertServes } from './lifecycle/serving.js'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'

const kScope = Symbol('fastify-tenancy.scope')
type WithScope = FastifyRequest & { [kScope]?: TenantScope | null }
type Done = (error?: Error) => void

/**
 * Register: options are checked, the central database is migrated, the
 * runtime is built and started, and `app.tenancy`, `request.tenant` and
 * `request.tenantEm` are declared. Then every route registered after this
 * gets a tenancy hook that resolves, enters and (on close) leaves.
 */
async function tenancy (app: FastifyInstance, rawOptions: TenancyOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
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

  app.decorate('tenancy', runtime.api)
  app.decorateRequest('tenant', null)
  app.decorateRequest(kScope, null)
  app.decorateRequest('tenantEm', {
    getter (this: WithScope) {
      const scope = this[kScope]
      if (scope == null) throw new NoTenantContextError('request.tenantEm')
      return scope.em
    }
  })

  const flow = requestFlow(runtime, options)
  // Each route gets its own onRequest hook that knows the route's config
  // object: reading `request.routeOptions` on every request would build a
  // new object each time. The mode is read at request time, so a plugin's
  // later onRoute hook (the admin sets its routes central) still counts.
  app.addHook('onRoute', (route) => {
    route.config ??= {}
    const config = route.config as { tenancy?: RouteMode }
    const hook: onRequestHookHandler = function (request, reply, done) {
      flow.resolve(request, reply, config.tenancy ?? options.defaultRouteMode, done)
    }
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    route.onRequest = [hook, ...existing]
  })
}

/** What happens to one request: resolve its tenant, enter that tenant's context, leave it when the response closes. */
function requestFlow (runtime: TenancyRuntime, options: ResolvedOptions): { resolve: (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, done: Done) => void } {
  const centralDomains = new Set(options.centralDomains)
  // Custom bootstrappers may hold something per request: then every tenant
  // request is reverted when its response closes. The shipped ones only need
  // it once the database was used, which saves a listener on most requests.
  const revertAlways = options.bootstrappers.length > 0

  /** Finds the request's tenant (from the cache without a promise when it can) or decides the route may go on without one. */
  const resolve = (request: FastifyRequest, reply: FastifyReply, mode: RouteMode, done: Done): void => {
    let found: Tenant | null | Promise<Tenant | null>
    try {
      if (mode === 'central') {
        if (!centralDomains.has(requestHost(request).name)) throw new CentralRouteError()
        done()
        return
      }
      found = runtime.identification.identify(request)
    } catch (error) {
      done(error as Error)
      return
    }
    if (found instanceof Promise) {
      found.then((tenant) => { enter(request, reply, tenant, mode, done) }, done)
    } else {
      enter(request, reply, found, mode, done)
    }
  }

  /** Opens the tenant's scope and runs the rest of the request inside its context. */
  const enter = (request: WithScope, reply: FastifyReply, tenant: Tenant | null, mode: RouteMode, done: Done): void => {
    if (tenant === null) {
      done(mode === 'tenant' ? new TenantNotIdentifiedError() : undefined)
      return
    }
    try {
      assertServes(tenant)
      const scope = runtime.scopes.open(tenant, request.log)
      request.tenant = tenant
      request[kScope] = scope
      request.log = scope.log
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

  /** Reverts the scope's bootstrappers (gives the connection back), once. */
  const leave = (request: WithScope): void => {
    const scope = request[kScope]
    if (scope == null) return
    request[kScope] = null
    runtime.scopes.close(scope)
  }

  return { resolve }
}

/** The fastify-tenancy plugin: `await app.register(tenancyPlugin, options)`. */
export const tenancyPlugin = fp(tenancy, { fastify: '5.x', name: 'fastify-tenancy' })
export default tenancyPlugin
