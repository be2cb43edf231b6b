import { parse } from 'cookie'
import type { IdentityResolver } from './resolver.js'
import { checkedIdentifier } from './identifier-value.js'

/** An identifier in a cookie (`tenant` unless configured otherwise). */
export function cookieResolver (cookieName = 'tenant'): IdentityResolver {
  return {
    name: 'cookie',
    resolve (request) {
      const header = request.headers.cookie
      if (header === undefined) return null
      const value = parse(header)[cookieName]
      if (value === undefined) return null
      return { by: 'identifier', value: checkedIdentifier(value, `${cookieName} cookie`), resolver: 'cookie' }
    }
  }
}
