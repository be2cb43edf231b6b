// Every augmentation of Fastify's types that fastify-tenancy makes, in one place.
import type { EntityManager } from '@mikro-orm/postgresql'
import type { RouteMode } from './options.js'
import type { Tenant } from './tenant.js'
import type { Tenancy } from './tenancy.js'
import type { ImpersonationSession } from './impersonation/impersonation.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The tenancy runtime: `run`, `current`, `tenants`, `em`, `invalidate`. */
    tenancy: Tenancy
  }
  interface FastifyRequest {
    /** The request's tenant; null on central routes and on universal routes that name none. */
    tenant: Tenant | null
    /** The EntityManager of the request's tenant database, forked on first use. */
    readonly tenantEm: EntityManager
    /** Set when an admin opened this tenant app as one of its users (an impersonation link); null otherwise. */
    impersonation: ImpersonationSession | null
  }
  interface FastifyContextConfig {
    /** Whether the route needs a tenant (`tenant`), must not have one (`central`), or takes either (`universal`). */
    tenancy?: RouteMode
  }
}

export {}
