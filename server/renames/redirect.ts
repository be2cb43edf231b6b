import type { FastifyRequest } from 'fastify'
import type { Identity } from '../identification/resolver.js'
import { isOnOrigin, originFor, requestHost, underCentralDomain } from '../identification/host.js'
import type { Tenant } from '../tenant.js'
import type { TenantProvider } from '../providers/provider.js'
import type { FormerNames } from './former-names.js'

export interface RenameRedirectsOptions {
  formerNames: FormerNames
  tenants: Pick<TenantProvider, 'byKey'>
  /** A tenant's domains, the primary first. */
  domainsOf: (tenantKey: string) => Promise<Array<{ domain: string }>>
  centralDomains: readonly string[]
  /** The route parameter the path resolver reads (`identification.pathParameter`). */
  pathParameter: string
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
    let target: { hostname: string, path: string }
    if (resolver === 'path') {
      const path = replaceParameter(request, this.options.pathParameter, identity.value, tenant.identifier)
      const hostname = requestHost(request).name
      // The path resolver reads no host, so a host that is not a central
      // domain may be anyone's (a Host or X-Forwarded-Host the client chose):
      // the Location is then a path on whatever host the client used, never
      // a URL naming the host it claimed.
      if (!this.options.centralDomains.includes(hostname)) return relativeLocation(path)
      target = { hostname, path }
    } else {
      target = await this.target(request, identity, resolver, tenant)
    }
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
        return { hostname: tenant.identifier + name.slice(identity.value.length), path: pathOf(request.url) }
      }
      default:
        return { hostname: await this.hostOf(request, tenant), path: pathOf(request.url) }
    }
  }

  /**
   * The tenant's primary domain, or its subdomain under the central domain
   * the request came under (a removed shop.example.com goes to
   * acme.example.com, not under the first central domain listed), else
   * under the first central domain that is a hostname.
   */
  private async hostOf (request: FastifyRequest, tenant: Tenant): Promise<string> {
    const domain = (await this.options.domainsOf(tenant.key))[0]?.domain
    if (typeof domain === 'string') return domain
    const under = underCentralDomain(requestHost(request).name, this.options.centralDomains)?.central
    const central = under ?? this.options.centralDomains.find((d) => !/^[\d.]+$/.test(d)) ?? this.options.centralDomains[0]
    return `${tenant.identifier}.${central ?? 'localhost'}`
  }
}

/** The path and query of a request target, also of an absolute-form one (`GET http://host/path`). */
function pathOf (url: string): string {
  if (url.startsWith('/')) return url
  try {
    const parsed = new URL(url)
    return parsed.pathname + parsed.search
  } catch {
    return '/'
  }
}

/**
 * The request's path with the segment that holds the route's `parameter`
 * (found from the route's pattern, `/:tenant/invoices/:id`) replaced by
 * `to`; when the pattern does not say (a wildcard before it), the first
 * segment that decodes to `from`. The query is left alone.
 */
function replaceParameter (request: FastifyRequest, parameter: string, from: string, to: string): string {
  const url = pathOf(request.url)
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const segments = path.split('/')
  const pattern = String(request.routeOptions.url ?? '').split('/')
  let i = pattern.slice(0, pattern.findIndex((p) => p.startsWith(`:${parameter}`)) + 1).some((p) => p.includes('*'))
    ? -1
    : pattern.findIndex((p) => p === `:${parameter}`)
  if (i < 0 || decoded(segments[i]) !== from) i = segments.findIndex((s) => decoded(s) === from)
  if (i >= 0) segments[i] = encodeURIComponent(to)
  return segments.join('/') + (q < 0 ? '' : url.slice(q))
}

function decoded (segment: string | undefined): string | null {
  if (segment === undefined) return null
  try { return decodeURIComponent(segment) } catch { return null }
}

/**
 * A Location on the request's own host: a path starting with exactly one
 * slash (`//evil.com/x` or `/\evil.com/x` would be read as another host);
 * null for anything else.
 */
function relativeLocation (path: string): string | null {
  const location = path.replace(/^[/\\]+/, '/')
  return location.startsWith('/') && !/[\r\n]/.test(location) ? location : null
}
