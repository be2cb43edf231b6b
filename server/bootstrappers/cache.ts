import type { Bootstrapper } from '../context/bootstrapper.js'

/** Gives the scope a cache key prefix made from the tenant's immutable key, so a rename keeps its cache apart. */
export function cacheBootstrapper (prefix: string): Bootstrapper {
  return {
    name: 'cache',
    bootstrap (scope) {
      scope.cachePrefix = `${prefix}${scope.tenant.key}:`
    },
    revert (scope) {
      scope.cachePrefix = null
    }
  }
}
