import type { IdentityResolver } from './resolver.js'
import { checkedIdentifier } from './identifier-value.js'

/**
 * An identifier in a route prefix segment: register tenant routes under
 * `/:tenant` (or the configured parameter). The parameter is removed from
 * `request.params`, so handlers see only their own parameters.
 */
export function pathResolver (parameter = 'tenant'): IdentityResolver {
  return {
    name: 'path',
    resolve (request) {
      const params = request.params as Record<string, unknown> | undefined
      if (params == null || !Object.hasOwn(params, parameter)) return null
      const value = params[parameter]
      delete params[parameter]
      return { by: 'identifier', value: checkedIdentifier(value, 'path'), resolver: 'path' }
    },
    // Another resolver decided (the host named the tenant): the parameter goes all the same, as the handler expects.
    strip (request) {
      const params = request.params as Record<string, unknown> | undefined
      if (params != null && Object.hasOwn(params, parameter)) delete params[parameter]
    }
  }
}
