import { AsyncLocalStorage } from 'node:async_hooks'
import type { Tenant } from '../tenant.js'
import type { TenantScope } from './tenant-scope.js'

/**
 * The tenant context of the running code. It lives in AsyncLocalStorage, so
 * each request, job or `run()` sees its own tenant through every await and
 * every timer it starts, and never another's. `run` returns to the previous
 * context when its function ends, whether it returns or throws.
 */
export class TenantContext {
  private readonly storage = new AsyncLocalStorage<TenantScope>()

  /** Runs `fn` with `scope` as the current tenant context. */
  run<R>(scope: TenantScope, fn: () => R): R {
    return this.storage.run(scope, fn)
  }

  /** Runs `fn` with no tenant context (central), even inside a tenant's. */
  exit<R>(fn: () => R): R {
    return this.storage.exit(fn)
  }

  scope (): TenantScope | null {
    return this.storage.getStore() ?? null
  }

  current (): Tenant | null {
    return this.storage.getStore()?.tenant ?? null
  }
}
