import type { MikroORM } from '@mikro-orm/postgresql'
import { centralSql } from '../database/central-sql.js'
import { centralTables } from '../database/central-schema.js'
import { IdentifierTakenError, InvalidDomainError } from '../errors.js'
import { underCentralDomain } from '../identification/host.js'

/**
 * A domain one label under a central domain (`shop.example.com` on
 * `example.com`) is also what the subdomain resolver reads as the tenant
 * `shop`: such a domain may not belong to one tenant while another is
 * called `shop`, or requests for it reach whichever resolver comes first.
 * Checked when a domain is added or a tenant is made or renamed (before the
 * write; the names' own unique keys still decide a race between the two).
 */

/** `shop` for `shop.example.com` under central domain `example.com` (what the subdomain resolver reads), else null. */
export function subdomainLabel (domain: string, centralDomains: readonly string[]): string | null {
  return underCentralDomain(domain, centralDomains)?.label ?? null
}

/** Refuses domains of tenant `ownerKey` (null: being made, as `identifier`) that read as another tenant's subdomain. */
export async function refuseSubdomainDomains (
  orm: MikroORM, domains: readonly string[], centralDomains: readonly string[], owner: { key: string | null, identifier: string }
): Promise<void> {
  const labelled = domains.map((d) => [d, subdomainLabel(d, centralDomains)] as const).filter(([, label]) => label !== null && label !== owner.identifier)
  if (labelled.length === 0) return
  const rows = await centralSql(orm)(`select identifier from ${centralTables(orm).tenants} where identifier in (select jsonb_array_elements_text(?::jsonb)) and key is distinct from ?::uuid`,
    [JSON.stringify(labelled.map(([, label]) => label)), owner.key])
  const taken = new Set(rows.map((r) => String(r.identifier)))
  const clash = labelled.find(([, label]) => taken.has(label as string))
  if (clash !== undefined) {
    throw new InvalidDomainError(clash[0], `it is also tenant "${clash[1] as string}"'s subdomain under a central domain, so its requests would reach that tenant`)
  }
}

/** Refuses an identifier whose subdomain under a central domain is another tenant's domain. */
export async function refuseIdentifierOfDomain (
  orm: MikroORM, identifier: string, centralDomains: readonly string[], ownerKey: string | null
): Promise<void> {
  if (centralDomains.length === 0) return
  const rows = await centralSql(orm)(`select domain from ${centralTables(orm).domains} where domain in (select jsonb_array_elements_text(?::jsonb)) and tenant_key is distinct from ?::uuid limit 1`,
    [JSON.stringify(centralDomains.map((c) => `${identifier}.${c}`)), ownerKey])
  if (rows.length > 0) throw new IdentifierTakenError(identifier)
}
