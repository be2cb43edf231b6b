import type { FastifyBaseLogger } from 'fastify'
import type { Tenant } from '../tenant.js'
import type { Bootstrapper } from './bootstrapper.js'
import { TenantScope } from './tenant-scope.js'
import type { TenantContext } from './tenant-context.js'

/**
 * Opens and closes tenant scopes: every bootstrapper runs on open and is
 * reverted on close, last first (stancl's bootstrap/revert). `run` ties a
 * scope to the tenant context for the length of a function.
 */
export class TenantScopes {
  private readonly bootstrappers: readonly Bootstrapper[]
  private readonly context: TenantContext
  private readonly log: FastifyBaseLogger

  constructor (bootstrappers: readonly Bootstrapper[], context: TenantContext, log: FastifyBaseLogger) {
    this.bootstrappers = bootstrappers
    this.context = context
    this.log = log
  }

  /**
   * Opens a scope for `tenant`; what was bootstrapped before a failing
   * bootstrapper is reverted. `ownsLog`: the logger is the scope's alone (a
   * request's), so bootstrappers may change it in place.
   */
  open (tenant: Tenant, log: FastifyBaseLogger = this.log, ownsLog = false): TenantScope {
    const scope = new TenantScope(tenant, log, ownsLog)
    let done = 0
    try {
      for (const b of this.bootstrappers) { b.bootstrap(scope); done++ }
    } catch (error) {
      for (let i = done - 1; i >= 0; i--) this.bootstrappers[i]?.revert(scope)
      throw error
    }
    return scope
  }

  /** Reverts every bootstrapper, last first; one failing revert does not stop the others. */
  close (scope: TenantScope): void {
    for (let i = this.bootstrappers.length - 1; i >= 0; i--) {
      try {
        this.bootstrappers[i]?.revert(scope)
      } catch (error) {
        this.log.error({ err: error }, `fastify-tenancy: bootstrapper ${this.bootstrappers[i]?.name ?? '?'} failed to revert`)
      }
    }
  }

  /** Runs `fn` as `tenant`; nests, and the previous tenant (or none) is back when `fn` settles. */
  async run<R>(tenant: Tenant, fn: (scope: TenantScope) => R | Promise<R>): Promise<R> {
    const scope = this.open(tenant)
    try {
      return await this.context.run(scope, async () => await fn(scope))
    } finally {
      this.close(scope)
    }
  }
}

/** Runs a function as a tenant; what services that work inside tenants are given. */
export type RunAsTenant = TenantScopes['run']
