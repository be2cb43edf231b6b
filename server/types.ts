// Every augmentation of Fastify's types that fastify-tenancy makes, in one place.
import type { EntityManager } from '@mikro-orm/postgresql'
import type { RouteMode } from './options.js'
import type { Tenant } from './tenant.js'
import type { TenancyApi } from './tenancy-api.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** fastify-tenancy's API: `run`, `current`, `tenants`, `create`, `migrate`, `sync`, `stats`… */
    tenancy: TenancyApi
  }
  interface FastifyRequest {
    /** The request's tenant; null on central routes and on universal routes that name none. */
    tenant: Tenant | null
    /** The EntityManager of the request's tenant database, forked on first use. */
    readonly tenantEm: EntityManager
  }
  interface FastifyContextConfig {
    /** Whether the route needs a tenant (`tenant`), must not have one (`central`), or takes either (`universal`). */
    tenancy?: RouteMode
  }
}

export {}
