import type { FastifyRequest } from 'fastify'

/** What a resolver found: an identifier, or a whole domain to be looked up as such. */
export interface Identity {
  by: 'identifier' | 'domain'
  value: string
  /** The resolver that found it (for messages and logs). */
  resolver: string
}

/** Facts a resolver may need besides the request. */
export interface ResolverContext {
  centralDomains: readonly string[]
}

/**
 * Finds the tenant a request names, without loading it. Returns null when the
 * request names none this way; throws a 4xx error when what it names is malformed.
 */
export interface IdentityResolver {
  readonly name: string
  resolve: (request: FastifyRequest, context: ResolverContext) => Identity | null
  /** Removes what the resolver reads from the request when an earlier resolver decided (the path resolver's parameter). */
  strip?: (request: FastifyRequest) => void
}
