import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import './types.js'
import { resolveOptions, type TenancyOptions, type RouteMode } from './options.js'
import { Tenancy } from './tenancy.js'
import { createCentralOrm, migrateCentral } from './database/central.js'
import { CentralRouteError, NoTenantContextError, TenantNotIdentifiedError } from './errors.js'
import { requestHost } from './identification/host.js'
import type { Tenant } from './tenant.js'
import type { TenantScope } from './context/tenant-scope.js'

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
  const runtime = new Tenancy(options, orm, app.log)
  app.addHook('onClose', async () => {
    await runtime.close()
    await orm.close(true)
  })
  await runtime.start()

  app.decorate('tenancy', runtime)
  app.decorateRequest('tenant', null)
  app.decorateRequest(kScope, null)
  app.decorateRequest('tenantEm', {
    getter (this: WithScope) {
      const scope = this[kScope]
      if (scope == null) throw new NoTenantContextError('request.tenantEm')
      return scope.em
    }
  })

  const centralDomains = new Set(options.centralDomains)

  const enter = (request: WithScope, tenant: Tenant | null, mode: RouteMode, done: (error?: Error) => void): void => {
    if (tenant === null) {
      if (mode === 'tenant') { done(new TenantNotIdentifiedError()); return }
      done()
      return
    }
    try {
      runtime.assertServes(tenant)
      const scope = runtime.openScope(tenant, request.log)
      request.tenant = tenant
      request[kScope] = scope
      request.log = scope.log
      // Everything after this hook (other hooks, the handler, what they
      // start) runs inside the tenant's context.
      runtime.context.run(scope, done)
    } catch (error) {
      done(error as Error)
    }
  }

  const onRequest: onRequestHookHandler = function (request, _reply, done) {
    // An unmatched URL has no route to ask: it takes a tenant if one is named, and its 404 either way.
    const mode = request.is404 ? 'universal' : request.routeOptions.config.tenancy ?? options.defaultRouteMode
    let found: Tenant | null | Promise<Tenant | null>
    try {
      if (mode === 'central') {
        if (!centralDomains.has(requestHost(request).name)) throw new CentralRouteError()
        done()
        return
      }
      found = runtime.identify(request)
    } catch (error) {
      done(error as Error)
      return
    }
    if (found instanceof Promise) {
      found.then((tenant) => enter(request, tenant, mode, done), done)
    } else {
      enter(request, found, mode, done)
    }
  }

  const leave = (request: WithScope): void => {
    const scope = request[kScope]
    if (scope == null) return
    request[kScope] = null
    runtime.closeScope(scope)
  }

  app.addHook('onRequest', onRequest)
  app.addHook('onResponse', (request, _reply, done) => { leave(request); done() })
  app.addHook('onRequestAbort', (request, done) => { leave(request); done() })
}

/** The fastify-tenancy plugin: `await app.register(tenancyPlugin, options)`. */
export const tenancyPlugin = fp(tenancy, { fastify: '5.x', name: 'fastify-tenancy' })
export default tenancyPlugin
