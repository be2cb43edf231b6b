import type { FastifyBaseLogger } from 'fastify'
import type { Bootstrapper } from '../context/bootstrapper.js'

/** pino's in-place variant of `child()`; a custom logger may lack it. */
type WithSetBindings = FastifyBaseLogger & { setBindings?: (bindings: Record<string, unknown>) => void }

/**
 * Tags every line of the scope's logger with the tenant's key and identifier.
 * A logger that belongs to the scope alone (a request's own child) gets the
 * tags in place, which costs far less than a child per request; any other
 * (the app's logger, for a job or `run()`) gets a child, dropped on revert.
 */
export function loggerBootstrapper (): Bootstrapper {
  const parents = Symbol('fastify-tenancy.parentLog')
  type Tagged = { [parents]?: FastifyBaseLogger }
  return {
    name: 'logger',
    bootstrap (scope) {
      const bindings = { tenant: { key: scope.tenant.key, identifier: scope.tenant.identifier } }
      const log = scope.log as WithSetBindings
      if (scope.ownsLog && typeof log.setBindings === 'function') {
        log.setBindings(bindings)
        return
      }
      (scope as Tagged)[parents] = scope.log
      scope.log = scope.log.child(bindings)
    },
    revert (scope) {
      const parent = (scope as Tagged)[parents]
      if (parent !== undefined) scope.log = parent
    }
  }
}
