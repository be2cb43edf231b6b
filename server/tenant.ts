/**
 * Attributes an app keeps on its tenants beyond the ones fastify-tenancy needs.
 * Extend it to type them:
 *
 * ```ts
 * declare module 'fastify-tenancy' { interface TenantAttributes { plan: 'free' | 'pro' } }
 * ```
 */
export interface TenantAttributes {}

/** `deleting`: a delete began and has not finished (not served; calling delete again finishes it). */
export type TenantStatus = 'provisioning' | 'active' | 'failed' | 'suspended' | 'deleting'

/** Where a tenant of strategy `shared` keeps its rows apart from the shared tables (see `Tenant.isolation`). */
export type TenantIsolation = 'database' | 'schema'

export const TENANT_STATUSES: readonly TenantStatus[] = ['provisioning', 'active', 'failed', 'suspended', 'deleting']

/**
 * The tenant contract (Sprout's dual identity plus a resource key).
 * - `key`: internal, immutable (UUID v7); foreign keys, jobs and the database name use it.
 * - `identifier`: public slug in hosts, paths, headers and cookies; may be renamed.
 * - `resourceKey`: immutable, filesystem-safe; storage prefixes use it. Optional: a
 *   tenant without one cannot be looked up by resource key.
 */
export interface Tenant {
  readonly key: string
  readonly identifier: string
  readonly resourceKey?: string | null
  readonly name: string
  readonly status: TenantStatus
  /** Name of the database host (from the `databaseHosts` option) holding the tenant's database. */
  readonly databaseHost?: string | null
  /**
   * Where the tenant's rows are when not where the strategy puts every
   * tenant: for a tenant of strategy `shared` isolated (`tenants:isolate`),
   * `'database'` (a database of its own) or `'schema'` (a schema of its own
   * in the shared tables' database); null or absent otherwise.
   */
  readonly isolation?: TenantIsolation | null
  /** Set while a move holds the tenant's requests: they wait for it to end (see "Moving a tenant" in docs/operations.md). */
  readonly heldAt?: Date | null
  readonly data?: Partial<TenantAttributes> & Record<string, unknown>
  /**
   * The tenant migrations the tenant has run, on `request.tenant` (as the
   * central record has it): `request.tenant.migrations?.has('Migration…')`
   * lets code branch during a rollout. Absent when never recorded.
   */
  readonly migrations?: { has: (name: string) => boolean, readonly names: readonly string[] }
}

/** Identifier rules from DESIGN.md: lowercase [a-z0-9-], 1 to 63 characters, no dash at either end. */
export const IDENTIFIER_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

export function isValidIdentifier (value: unknown): value is string {
  // `xn--` starts a punycode label: such a subdomain would not be served.
  return typeof value === 'string' && IDENTIFIER_PATTERN.test(value) && !value.startsWith('xn--')
}

/** A UUID in its canonical lowercase form, as keys and resource keys are stored. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * A plain tenant, as the database provider returns it: the row's columns and
 * nothing else (no ORM, no events).
 */
export class GenericTenant implements Tenant {
  readonly key: string
  readonly identifier: string
  readonly resourceKey: string | null
  readonly name: string
  readonly status: TenantStatus
  readonly databaseHost: string | null
  readonly isolation: TenantIsolation | null
  readonly heldAt: Date | null
  readonly data: Record<string, unknown>

  constructor (row: {
    key: string
    identifier: string
    resource_key?: string | null
    name?: string | null
    status?: string | null
    database_host?: string | null
    isolation?: string | null
    held_at?: Date | null
    data?: Record<string, unknown> | null
  }) {
    this.key = row.key
    this.identifier = row.identifier
    this.resourceKey = row.resource_key ?? null
    this.name = row.name ?? row.identifier
    this.status = (row.status ?? 'active') as TenantStatus
    this.databaseHost = row.database_host ?? null
    this.isolation = row.isolation === 'database' || row.isolation === 'schema' ? row.isolation : null
    this.heldAt = row.held_at ?? null
    this.data = row.data ?? {}
  }
}
