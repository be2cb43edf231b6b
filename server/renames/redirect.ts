import type { FastifyRequest } from 'fastify'
import type { Identity } from '../identification/resolver.js'
import { isOnOrigin, originFor, requestHost } from '../identification/host.js'
import type { Tenant } from '../tenant.js'
import type { TenantProvider } from '../providers/provider.js'
import type { FormerNames } from './former-names.js'

export interface RenameRedirectsOptions {
  formerNames: FormerNames
  tenants: Pick<TenantProvider, 'byKey'>
  /** A tenant's domains, the primary first. */
  domainsOf: (tenantKey: string) => Promise<Array<{ domain: string }>>
  centralDomains: readonly string[]
}

/** The resolvers whose names live in the URL, so a new URL can be made for them. */
const IN_URL = new Set(['subdomain', 'domain', 'path'])

/**
 * Turns a request for a former name into the same request for the current
 * one: the old subdomain, domain or path prefix becomes the tenant's new one;
 * the rest of the path and the query stay.
 */
export class RenameRedirects {
  private readonly options: RenameRedirectsOptions

  constructor (options: RenameRedirectsOptions) {
    this.options = options
  }

  /** Where a request that named `identity` (unknown now) should go, or null when the name is not a kept former name. */
  async location (request: FastifyRequest, identity: Identity): Promise<string | null> {
    if (!IN_URL.has(identity.resolver)) return null
    let resolver = identity.resolver
    let former = await this.options.formerNames.find(identity.by === 'domain' ? 'domain' : 'identifier', identity.value)
    if (former === null && resolver === 'subdomain') {
      // A removed domain under a central domain (shop.example.com on example.com) reads as a subdomain now: it redirects as the domain it was.
      former = await this.options.formerNames.find('domain', requestHost(request).name)
      resolver = 'domain'
    }
    if (former === null) return null
    const tenant = await this.options.tenants.byKey(former.tenantKey)
    if (tenant === null) return null
    const target = await this.target(request, identity, resolver, tenant)
    // Only from checked parts (scheme, the new hostname, the port of the
    // trusted host), and only when the result still names that hostname.
    const origin = originFor(request, target.hostname)
    if (origin === null) return null
    const location = origin + target.path
    return isOnOrigin(location, origin) ? location : null
  }

  /** The hostname and path the request would have under the tenant's current name. */
  private async target (request: FastifyRequest, identity: Identity, resolver: Identity['resolver'], tenant: Tenant): Promise<{ hostname: string, path: string }> {
    switch (resolver) {
      case 'subdomain': {
        const name = requestHost(request).name
        return { hostname: tenant.identifier + name.slice(identity.value.length), path: request.url }
      }
      case 'path':
        return { hostname: requestHost(request).name, path: replaceSegment(request.url, identity.value, tenant.identifier) }
      default:
        return { hostname: await this.hostOf(tenant), path: request.url }
    }
  }

  /** The tenant's primary domain, or its subdomain under the first central domain that is a hostname. */
  private async hostOf (tenant: Tenant): Promise<string> {
    const domain = (await this.options.domainsOf(tenant.key))[0]?.domain
    if (typeof domain === 'string') return domain
    const central = this.options.centralDomains.find((d) => !/^[\d.]+$/.test(d)) ?? this.options.centralDomains[0]
    return `${tenant.identifier}.${central ?? 'localhost'}`
  }
}

/** Replaces the first whole path segment equal to `from` (the query is left alone). */
function replaceSegment (url: string, from: string, to: string): string {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const segments = path.split('/')
  const i = segments.indexOf(from)
  if (i >= 0) segments[i] = to
  return segments.join('/') + (q < 0 ? '' : url.slice(q))
}
