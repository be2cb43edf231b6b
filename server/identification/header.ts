import type { IdentityResolver } from './resolver.js'
import { checkedIdentifier } from './identifier-value.js'

/** An identifier in a request header (`X-Tenant` unless configured otherwise). */
export function headerResolver (headerName = 'x-tenant'): IdentityResolver {
  const header = headerName.toLowerCase()
  return {
    name: 'header',
    resolve (request) {
      const value = request.headers[header]
      if (value === undefined) return null
      return { by: 'identifier', value: checkedIdentifier(value, `${headerName} header`), resolver: 'header' }
    }
  }
}
