// Every augmentation of Fastify's types that fastify-tenancy makes, in one place.
import type { EntityManager } from '@mikro-orm/postgresql'
import type { RouteMode } from './options/index.js'
import type { Tenant } from './tenant.js'
import type { TenancyApi } from './tenancy-api.js'
import type { ImpersonationSession } from './impersonation/impersonation.js'
import type { RequestTenancy } from './tenancies.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** fastify-tenancy's API: `run`, `current`, `tenants`, `create`, `migrate`, `sync`, `stats`… */
    tenancy: TenancyApi
    /** Every registration of the plugin by its `name` option: `app.tenancies.tenants` (the default, also `app.tenancy`), `app.tenancies.teams`… */
    tenancies: Record<string, TenancyApi>
  }
  interface FastifyRequest {
    /** The request's tenant; null on central routes and on universal routes that name none. */
    tenant: Tenant | null
    /** The EntityManager of the request's tenant database, forked on first use. */
    readonly tenantEm: EntityManager
    /** Set when an admin opened this tenant app as one of its users (an impersonation link); null otherwise. */
    impersonation: ImpersonationSession | null
    /** What each registration found for this request, by name: `request.tenancies.teams.tenant`, `.em`. */
    readonly tenancies: Record<string, RequestTenancy | undefined>
  }
  interface FastifyContextConfig {
    /**
     * Whether the route needs a tenant (`tenant`), must not have one
     * (`central`), or takes either (`universal`); or `{ mode, requires }`,
     * where `requires` names the tenant migrations (one or a list) a tenant
     * must have run to be served this route (else 503 FST_TENANCY_MIGRATING).
     */
    tenancy?: RouteMode | { mode?: RouteMode, requires?: string | readonly string[] }
    /** Route modes for the other registrations, by name (`{ teams: 'tenant' }`); each defaults to its own `defaultRouteMode`. */
    tenancies?: Record<string, RouteMode | { mode?: RouteMode, requires?: string | readonly string[] }>
  }
}

export {}
