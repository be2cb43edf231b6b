import type { FastifyRequest } from 'fastify'
import type { Identity } from '../identification/resolver.js'
import { requestHost } from '../identification/host.js'
import type { Tenant } from '../tenant.js'
import type { TenantProvider } from '../providers/provider.js'
import type { SqlExecutor } from '../providers/provider.js'
import type { FormerNames } from './former-names.js'

export interface RenameRedirectsOptions {
  formerNames: FormerNames
  tenants: Pick<TenantProvider, 'byKey'>
  execute: SqlExecutor
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
    const host = request.headers.host ?? ''
    const colon = host.startsWith('[') ? host.indexOf(']:') + 1 : host.lastIndexOf(':')
    const port = colon > 0 ? host.slice(colon) : ''
    const origin = (hostname: string): string => `${request.protocol}://${hostname}${port}`
    switch (resolver) {
      case 'subdomain': {
        const name = requestHost(request).name
        return origin(tenant.identifier + name.slice(identity.value.length)) + request.url
      }
      case 'path':
        return origin(requestHost(request).name) + replaceSegment(request.url, identity.value, tenant.identifier)
      default:
        return origin(await this.hostOf(tenant)) + request.url
    }
  }

  /** The tenant's primary domain, or its subdomain under the first central domain that is a hostname. */
  private async hostOf (tenant: Tenant): Promise<string> {
    const rows = await this.options.execute('select domain from domains where tenant_key = ? order by is_primary desc, id limit 1', [tenant.key])
    const domain = rows[0]?.domain
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
