import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TenantScope } from '../context/tenant-scope.js'
import type { CreateTenantInput } from '../lifecycle/tenant-input.js'
import type { Tenant } from '../tenant.js'

export interface TestTenantOptions extends Partial<CreateTenantInput> {
  /**
   * The Host header that reaches the tenant (default: its first domain, else
   * `<identifier>.localhost`, which the subdomain resolver with central
   * domain `localhost` reads).
   */
  host?: string
}

export interface TestTenant {
  tenant: Tenant
  /** The Host header to send to reach this tenant through `app.inject`. */
  host: string
  /** Deletes the tenant and its data (its database, schema or rows); safe to call twice. */
  remove: () => Promise<void>
}

/**
 * A fresh tenant for one test: a new identifier each call (tests may run in
 * parallel), made the way the app makes tenants (`app.tenancy.create`), so it
 * is cloned from the template database, or taken from a spare when the app
 * keeps spares, and costs milliseconds rather than a migration run.
 */
export async function createTestTenant (app: FastifyInstance, options: TestTenantOptions = {}): Promise<TestTenant> {
  const { host, ...input } = options
  const identifier = input.identifier ?? `test-${randomBytes(5).toString('hex')}`
  const tenant = await app.tenancy.create({ ...input, identifier, name: input.name ?? identifier })
  let removed = false
  return {
    tenant,
    host: host ?? input.domains?.[0] ?? `${identifier}.localhost`,
    remove: async () => {
      if (removed) return
      removed = true
      await app.tenancy.delete(tenant)
    }
  }
}

/** Runs `fn` in the tenant's context (its EntityManager, logger, storage), as a request of that tenant would. */
export async function withTenant<R> (app: FastifyInstance, tenant: Tenant, fn: (scope: TenantScope) => R | Promise<R>): Promise<R> {
  return await app.tenancy.run(tenant, fn)
}
