import type { IdentityResolver } from './resolver.js'
import { requestHost } from './host.js'

/**
 * The whole host, looked up in `domains`. Central domains and IP addresses
 * never identify a tenant.
 */
export function domainResolver (): IdentityResolver {
  return {
    name: 'domain',
    resolve (request, { centralDomains }) {
      const host = requestHost(request)
      if (host.ip || centralDomains.includes(host.name)) return null
      return { by: 'domain', value: host.name, resolver: 'domain' }
    }
  }
}
