// The contract lives beside the scopes that run it; bootstrappers/ holds the built-in ones.
import type { TenantScope } from './tenant-scope.js'

/**
 * Prepares one concern for a tenant when its context starts, and undoes it
 * when the context ends (Tenancy for Laravel's bootstrap/revert). Both run on
 * every request, so they must be cheap and synchronous: open nothing here
 * that can be opened lazily.
 */
export interface Bootstrapper {
  readonly name: string
  bootstrap: (scope: TenantScope) => void
  revert: (scope: TenantScope) => void
}
