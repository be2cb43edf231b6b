import type { FastifyRequest } from 'fastify'
import type { Tenant } from '../tenant.js'
import type { Identity, IdentityResolver, ResolverContext } from './resolver.js'
import type { TenantProvider } from '../providers/provider.js'
import type { CachedTenantProvider } from '../providers/cached-provider.js'
import { unknownTenant } from './unknown-tenant.js'

type Lookup = 'byIdentifier' | 'byDomain'
type Lookups = Pick<TenantProvider, 'byIdentifier' | 'byDomain'>

/**
 * Turns a request into its tenant: resolvers are tried in order and the
 * first identity that names a known tenant wins. Returns null when no
 * resolver finds an identity; throws FST_TENANCY_UNKNOWN_TENANT when
 * identities were found but none is a tenant. A cache hit answers without
 * a promise, so a hot request costs no microtask.
 */
export class TenantIdentification {
  private readonly resolvers: readonly IdentityResolver[]
  /** The resolvers that remove what they read, with their places (most apps have none). */
  private readonly strippers: ReadonlyArray<readonly [number, IdentityResolver]>
  private readonly context: ResolverContext
  private readonly tenants: Lookups
  private readonly cache: Pick<CachedTenantProvider, 'peek'> | null

  constructor (resolvers: readonly IdentityResolver[], context: ResolverContext, tenants: Lookups, cache: Pick<CachedTenantProvider, 'peek'> | null) {
    this.resolvers = resolvers
    this.strippers = resolvers.map((r, i) => [i, r] as const).filter(([, r]) => r.strip !== undefined)
    this.context = context
    this.tenants = tenants
    this.cache = cache
  }

  identify (request: FastifyRequest): Tenant | null | Promise<Tenant | null> {
    let first: Identity | null = null
    for (let i = 0; i < this.resolvers.length; i++) {
      const identity = (this.resolvers[i] as IdentityResolver).resolve(request, this.context)
      if (identity === null) continue
      first ??= identity
      const lookup: Lookup = identity.by === 'domain' ? 'byDomain' : 'byIdentifier'
      const cached = this.cache?.peek(lookup, identity.value)
      if (cached === undefined) return this.identifyFrom(request, i, identity, first)
      if (cached !== null) { this.stripAfter(request, i); return cached }
    }
    if (first !== null) throw unknownTenant(first)
    return null
  }

  private async identifyFrom (request: FastifyRequest, index: number, identity: Identity, first: Identity): Promise<Tenant | null> {
    let current: Identity | null = identity
    for (let i = index; i < this.resolvers.length; i++) {
      if (i > index) current = (this.resolvers[i] as IdentityResolver).resolve(request, this.context)
      if (current === null) continue
      const tenant = current.by === 'domain'
        ? await (this.tenants.byDomain as (d: string) => Promise<Tenant | null>)(current.value)
        : await this.tenants.byIdentifier(current.value)
      if (tenant !== null) { this.stripAfter(request, i); return tenant }
    }
    throw unknownTenant(first)
  }

  /** What the resolvers after the deciding one would have read goes from the request too. */
  private stripAfter (request: FastifyRequest, decided: number): void {
    for (const [i, resolver] of this.strippers) if (i > decided) resolver.strip?.(request)
  }
}
