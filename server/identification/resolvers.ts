import type { IdentityResolver } from './resolver.js'
import { domainResolver } from './domain.js'
import { subdomainResolver } from './subdomain.js'
import { headerResolver } from './header.js'
import { cookieResolver } from './cookie.js'
import { pathResolver } from './path.js'
import { parseHost } from './host.js'
import { checkedIdentifier } from './identifier-value.js'

export type ResolverName = 'domain' | 'subdomain' | 'path' | 'header' | 'cookie'

export interface ResolverSettings {
  identification: ReadonlyArray<ResolverName | IdentityResolver>
  header: string
  cookie: string
  pathParameter: string
}

/** The resolvers the options name, in order; an app's own ones are held to the shipped ones' rules. */
export function buildResolvers (settings: ResolverSettings): IdentityResolver[] {
  return settings.identification.map((r) => typeof r === 'string' ? builtinResolver(r, settings) : checkedResolver(r))
}

function builtinResolver (name: ResolverName, settings: ResolverSettings): IdentityResolver {
  switch (name) {
    case 'domain': return domainResolver()
    case 'subdomain': return subdomainResolver()
    case 'header': return headerResolver(settings.header)
    case 'cookie': return cookieResolver(settings.cookie)
    case 'path': return pathResolver(settings.pathParameter)
  }
}

/** What an app's own resolver finds must be well-formed, like what the shipped ones find. */
function checkedResolver (resolver: IdentityResolver): IdentityResolver {
  return {
    name: resolver.name,
    resolve (request, context) {
      const identity = resolver.resolve(request, context)
      if (identity === null || identity === undefined) return null
      if (identity.by === 'domain') parseHost(identity.value)
      else checkedIdentifier(identity.value, `${resolver.name} resolver`)
      return identity
    }
  }
}
