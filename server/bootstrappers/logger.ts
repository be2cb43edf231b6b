import type { Bootstrapper } from './bootstrapper.js'

/** Makes the scope's logger a child that tags every line with the tenant's key and identifier. */
export function loggerBootstrapper (): Bootstrapper {
  const parents = new WeakMap<object, import('fastify').FastifyBaseLogger>()
  return {
    name: 'logger',
    bootstrap (scope) {
      parents.set(scope, scope.log)
      scope.log = scope.log.child({ tenant: { key: scope.tenant.key, identifier: scope.tenant.identifier } })
    },
    revert (scope) {
      const parent = parents.get(scope)
      if (parent !== undefined) scope.log = parent
    }
  }
}
