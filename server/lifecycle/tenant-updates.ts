import type { MikroORM } from '@mikro-orm/postgresql'
import { tenantChange, type TenantChange } from '../providers/invalidation.js'
import type { Run } from '../database/central-transaction.js'
import type { Tenant } from '../tenant.js'
import { UUID_PATTERN } from '../tenant.js'
import { refuseIdentifierOfDomain } from './subdomain-clash.js'
import { ClusterNotFoundError, IdentifierTakenError, InvalidTenantChangeError } from '../errors.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import { TenantClusterEntity } from '../entities/central/tenant-cluster.entity.js'
import { centralTransaction } from '../database/central-transaction.js'
import { checkIdentifier } from './tenant-input.js'
import { freshTenant, lockTenant } from './tenant-rows.js'
import { isUniqueViolation } from '../database/pg-errors.js'
import type { TenancyEvents, TenantChanges } from '../events/tenancy-events.js'

const FIELDS = new Set(['identifier', 'name', 'data', 'clusterId'])

/** Moves a tenant into a cluster (or none) by the tenant cluster rules, inside the caller's transaction. */
export type MoveToCluster = (run: Run, tenantKey: string, clusterId: string | null) => Promise<void>

/** Checks a change before any SQL: the same identifier rules as `create`, a name, a plain data object, a cluster id. */
export function checkTenantChanges (changes: unknown, centralDomains: readonly string[], currentIdentifier?: string): TenantChanges {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) throw new InvalidTenantChangeError('give an object with identifier, name, data or clusterId')
  const input = changes as Record<string, unknown>
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) throw new InvalidTenantChangeError(`"${key.slice(0, 40)}" cannot be changed; use identifier, name, data or clusterId`)
  }
  const checked: TenantChanges = {}
  // The identifier a tenant has already is kept as it is (a form sends it back unchanged), even one the rules would now refuse.
  if (input.identifier !== undefined) {
    checked.identifier = input.identifier === currentIdentifier ? currentIdentifier : checkIdentifier(input.identifier, centralDomains)
  }
  if (input.name !== undefined) {
    const name = typeof input.name === 'string' ? input.name.trim() : ''
    if (name.length === 0 || name.length > 255) throw new InvalidTenantChangeError('a name is 1 to 255 characters')
    checked.name = name
  }
  if (input.data !== undefined) {
    if (typeof input.data !== 'object' || input.data === null || Array.isArray(input.data)) throw new InvalidTenantChangeError('data is a plain object')
    checked.data = input.data as Record<string, unknown>
  }
  if (input.clusterId !== undefined) {
    if (input.clusterId !== null && (typeof input.clusterId !== 'string' || !UUID_PATTERN.test(input.clusterId))) throw new InvalidTenantChangeError('clusterId is a tenant cluster id, or null for none')
    checked.clusterId = input.clusterId
  }
  return checked
}

/**
 * `app.tenancy.update()`: changes a tenant's identifier, name, data and
 * cluster in one transaction. Either every field is saved or none is: an
 * identifier that is taken, or a cluster move the cluster rule refuses,
 * leaves the tenant as it was.
 */
export class TenantUpdates {
  constructor (
    private readonly orm: MikroORM,
    private readonly events: TenancyEvents,
    private readonly forget: (change: TenantChange) => void,
    private readonly moveToCluster: MoveToCluster,
    private readonly centralDomains: readonly string[],
    /** The plugin's clock: a rename's former name expires by it. */
    private readonly now?: () => number
  ) {}

  async update (tenant: Pick<Tenant, 'key'>, changes: TenantChanges): Promise<Tenant> {
    const before = await freshTenant(this.orm, tenant.key)
    const checked = checkTenantChanges(changes, this.centralDomains, before.identifier)
    await this.refuseKnownConflicts(before, checked)
    await this.events.emit({ name: 'tenant.updating', tenant: before, changes: checked })
    try {
      await centralTransaction(this.orm, async (run) => {
        // The cluster move first: it locks the clusters before the tenant row, in the same order as app.tenancy.clusters.
        if (checked.clusterId !== undefined) await this.moveToCluster(run, before.key, checked.clusterId)
        await lockTenant(run, before.key)
        const set: string[] = []
        const params: unknown[] = []
        if (checked.identifier !== undefined) { set.push('identifier = ?'); params.push(checked.identifier) }
        if (checked.name !== undefined) { set.push('name = ?'); params.push(checked.name) }
        if (checked.data !== undefined) { set.push('data = ?'); params.push(JSON.stringify(checked.data)) }
        if (set.length > 0) await run(`update ${run.tables.tenants} set ${set.join(', ')}, updated_at = now() where key = ?`, [...params, before.key])
      }, checked.identifier !== undefined ? this.now : undefined)
    } catch (error) {
      if (checked.identifier !== undefined && isUniqueViolation(error, 'identifier')) throw new IdentifierTakenError(checked.identifier)
      throw error
    } finally {
      // Also after a failure: a rolled-back change costs one cache miss, a stale entry could serve the old identifier.
      this.forget(tenantChange([before.key], { identifiers: [before.identifier, checked.identifier] }))
    }
    const after = await freshTenant(this.orm, before.key)
    await this.events.emit({ name: 'tenant.updated', tenant: after, previous: before, changes: checked })
    return after
  }

  /** A taken identifier or an unknown cluster is refused before `tenant.updating`; the transaction checks both again. */
  private async refuseKnownConflicts (tenant: Tenant, checked: TenantChanges): Promise<void> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    if (checked.identifier !== undefined && checked.identifier !== tenant.identifier) {
      const holder = await em.findOne(TenantEntity, { identifier: checked.identifier }, { fields: ['key'] })
      if (holder !== null && holder.key !== tenant.key) throw new IdentifierTakenError(checked.identifier)
      await refuseIdentifierOfDomain(this.orm, checked.identifier, this.centralDomains, tenant.key)
    }
    if (typeof checked.clusterId === 'string' && await em.count(TenantClusterEntity, { id: checked.clusterId }) === 0) {
      throw new ClusterNotFoundError(checked.clusterId)
    }
  }
}
