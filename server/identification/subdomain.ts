import type { IdentityResolver } from './resolver.js'
import { requestHost, underCentralDomain } from './host.js'
import { checkedIdentifier } from './identifier-value.js'

/**
 * The one label in front of a central domain (`acme` in `acme.example.com`
 * when `example.com` is central). Hosts outside the central domains, deeper
 * hosts and IP addresses are not subdomains.
 */
export function subdomainResolver (): IdentityResolver {
  return {
    name: 'subdomain',
    resolve (request, { centralDomains }) {
      const host = requestHost(request)
      if (host.ip) return null
      const under = underCentralDomain(host.name, centralDomains)
      if (under?.label == null) return null
      return { by: 'identifier', value: checkedIdentifier(under.label, 'subdomain'), resolver: 'subdomain' }
    }
  }
}
