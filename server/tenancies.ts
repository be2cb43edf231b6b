import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { EntityManager } from '@mikro-orm/postgresql'
import type { TenancyApi } from './tenancy-api.js'
import type { Tenant } from './tenant.js'
import { misuse } from './misuse.js'

/** The name of the registration that keeps `app.tenancy`, `request.tenant` and `request.tenantEm`. */
export const DEFAULT_TENANCY_NAME = 'tenants'

/** One tenancy as a request sees it: `request.tenancies.<name>`. */
export interface RequestTenancy {
  /** The tenant (or team, …) this tenancy found for the request, or null. */
  readonly tenant: Tenant | null
  /** Its EntityManager; throws FST_TENANCY_NO_TENANT_CONTEXT when `tenant` is null. */
  readonly em: EntityManager
}

export interface TenancyRegistration {
  name: string
  api: TenancyApi
  tenantOf: (request: FastifyRequest) => Tenant | null
  emOf: (request: FastifyRequest) => EntityManager
}

const kRegistry = Symbol('fastify-tenancy.registry')
type WithRegistry = FastifyInstance & { [kRegistry]?: Map<string, TenancyRegistration> }

/**
 * Adds one registration of the plugin to `app.tenancies` and
 * `request.tenancies`; the first one declares both. Two registrations under
 * one name are refused: each keeps its own resolvers, provider, cache and
 * context, and is found by its name.
 */
export function declareTenancy (app: FastifyInstance, registration: TenancyRegistration): void {
  const holder = app as WithRegistry
  let registry = holder[kRegistry]
  if (registry === undefined) {
    const registrations = new Map<string, TenancyRegistration>()
    registry = registrations
    app.decorate(kRegistry, registrations)
    app.decorate('tenancies', {})
    app.decorateRequest('tenancies', {
      getter (this: FastifyRequest) {
        const request = this
        const out: Record<string, RequestTenancy> = {}
        for (const [name, r] of registrations) {
          out[name] = { tenant: r.tenantOf(request), get em () { return r.emOf(request) } }
        }
        return out
      }
    })
  }
  if (registry.has(registration.name)) {
    throw misuse.registeredTwice(registration.name)
  }
  registry.set(registration.name, registration)
  app.tenancies[registration.name] = registration.api
}
