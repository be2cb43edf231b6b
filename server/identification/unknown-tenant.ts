import { UnknownTenantError } from '../errors.js'
import type { Identity } from './resolver.js'

const kIdentity = Symbol('fastify-tenancy.identity')

/** FST_TENANCY_UNKNOWN_TENANT carrying the identity that named no tenant, so a former name can still be redirected. */
export function unknownTenant (identity: Identity): Error {
  return Object.assign(new UnknownTenantError(identity.value), { [kIdentity]: identity })
}

/** The identity an unknown-tenant error was made for, if any. */
export function identityOf (error: unknown): Identity | null {
  return (error as { [kIdentity]?: Identity } | null)?.[kIdentity] ?? null
}
