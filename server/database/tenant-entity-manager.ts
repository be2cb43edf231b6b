import { EntityManager, type ForkOptions } from '@mikro-orm/postgresql'
import { NoTenantContextError, TenantMismatchError } from '../errors.js'

/** Who the running code works for: the key of the tenant of the running context, or null outside any. */
export type RunningTenant = () => string | null

/**
 * The EntityManager of tenant pools. It carries the tenant it was leased for,
 * and every fork inherits it (`em.transactional()` works on a fork). Used
 * while another tenant's context runs (kept in a closure or a module across
 * requests), it refuses with FST_TENANCY_WRONG_TENANT before it reads its
 * identity map or sends a statement: what it holds is the first tenant's.
 * In strategy `shared` it also refuses to work outside any tenant context
 * (its statements would prove no tenant). Raw SQL through its connection is
 * held at the connection (statement-client.ts): a tenant database's
 * connection refuses another tenant's context, and a connection tenants
 * share serves the running tenant only.
 */
export class TenantEntityManager extends EntityManager {
  /** The tenant this EntityManager was leased for, or null (a pool's own root EntityManager). */
  tenantKey: string | null = null
  /** The running tenant context, as the pools see it (null: no check). */
  running: RunningTenant | null = null
  /** True when it may work only inside its tenant's context (strategy `shared`). */
  needsContext = false

  /** Throws unless the running context is this EntityManager's tenant (or none, where that is allowed). */
  assertTenant (): void {
    // MikroORM's constructor asks for the context before these fields are set: undefined there.
    const owner = this.tenantKey
    const current = this.running
    if (owner === null || owner === undefined || current === null || current === undefined) return
    const running = current()
    if (running === owner) return
    if (running === null) {
      if (this.needsContext) throw new NoTenantContextError('A statement of the tenant EntityManager')
      return
    }
    throw new TenantMismatchError(owner, running)
  }

  override fork (options?: ForkOptions): this {
    const fork = super.fork(options)
    fork.tenantKey = this.tenantKey
    fork.running = this.running
    fork.needsContext = this.needsContext
    return fork
  }

  override getContext (validate?: boolean): this {
    this.assertTenant()
    return super.getContext(validate) as this
  }
}
