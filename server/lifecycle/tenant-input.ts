import { IdentifierTakenError, InvalidDomainError, InvalidIdentifierError } from '../errors.js'
import { parseHost } from '../identification/host.js'
import { isValidIdentifier } from '../tenant.js'

/** What `app.tenancy.create()` takes. */
export interface CreateTenantInput {
  identifier: string
  name?: string
  domains?: string[]
  data?: Record<string, unknown>
  /** Database host name (from `database.hosts`); the placement function picks one when omitted. */
  databaseHost?: string
}

/** Names that would clash with the central app or common infrastructure. */
export const RESERVED_IDENTIFIERS = new Set(['www', 'admin', 'api', 'app', 'central', 'landlord', 'static', 'assets', 'mail', 'localhost'])

/** Checks a tenant's identifier and domains before anything touches the database. */
export function checkTenantInput (input: CreateTenantInput, centralDomains: readonly string[]): Required<Omit<CreateTenantInput, 'databaseHost'>> & { databaseHost?: string } {
  checkIdentifier(input.identifier, centralDomains)
  const domains = [...new Set(input.domains ?? [])]
  for (const domain of domains) checkDomain(domain, centralDomains)
  const name = (input.name ?? input.identifier).trim()
  return {
    identifier: input.identifier,
    name: name.length === 0 ? input.identifier : name.slice(0, 255),
    domains,
    data: input.data ?? {},
    databaseHost: input.databaseHost
  }
}

/** An identifier a tenant may take: well-formed, not reserved, not the first label of a central domain. */
export function checkIdentifier (identifier: unknown, centralDomains: readonly string[]): string {
  if (!isValidIdentifier(identifier)) throw new InvalidIdentifierError('input')
  if (RESERVED_IDENTIFIERS.has(identifier) || centralDomains.some((d) => d.split('.')[0] === identifier)) {
    throw new IdentifierTakenError(identifier)
  }
  return identifier
}

/** A domain a tenant may have: a well-formed lowercase hostname with two or more labels, not central. */
export function checkDomain (domain: unknown, centralDomains: readonly string[]): string {
  if (typeof domain !== 'string') throw new InvalidDomainError(String(domain), 'it must be a string')
  let host
  try {
    host = parseHost(domain)
  } catch {
    throw new InvalidDomainError(domain.slice(0, 100), 'use lowercase ASCII letters, digits, dashes and dots, without port or punycode')
  }
  if (host.ip || host.name !== domain) throw new InvalidDomainError(domain.slice(0, 100), 'it must be a hostname, not an address or a host with a port')
  if (!domain.includes('.')) throw new InvalidDomainError(domain, 'it needs at least two labels, like acme.example.com')
  if (centralDomains.includes(domain)) throw new InvalidDomainError(domain, 'it is a central domain')
  return domain
}
