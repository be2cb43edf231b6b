import type { MikroORM } from '@mikro-orm/postgresql'
import { tenantChange, type TenantChange } from '../providers/invalidation.js'
import type { Run } from '../database/central-transaction.js'
import type { Tenant } from '../tenant.js'
import { DomainNotFoundError, DomainTakenError, InvalidDomainError, InvalidTenantChangeError } from '../errors.js'
import { refuseSubdomainDomains } from './subdomain-clash.js'
import { centralTransaction } from '../database/central-transaction.js'
import { DomainEntity } from '../entities/central/domain.entity.js'
import { checkDomain } from './tenant-input.js'
import { freshTenant, lockTenant } from './tenant-rows.js'
import { isUniqueViolation } from '../database/pg-errors.js'
import type { TenancyEvents } from '../events/tenancy-events.js'

/** One domain of a tenant. */
export interface TenantDomain {
  id: number
  domain: string
  primary: boolean
}

/** A tenant's domains as the central database has them now, the primary first, then by name (what other features read instead of the domains table). */
export async function domainsOf (orm: MikroORM, tenantKey: string): Promise<TenantDomain[]> {
  const em = orm.em.fork({ clear: true, useContext: false })
  const rows = await em.find(DomainEntity, { tenant: tenantKey }, { orderBy: [{ isPrimary: 'desc' }, { domain: 'asc' }] })
  return rows.map((d) => ({ id: d.id, domain: d.domain, primary: d.isPrimary }))
}

/**
 * `app.tenancy.domains`: the whole hostnames that identify a tenant. Each
 * change locks the tenant's row, so changes to one tenant's domains take
 * turns and a tenant with domains always has exactly one primary.
 */
export class TenantDomains {
  constructor (
    private readonly orm: MikroORM,
    private readonly events: TenancyEvents,
    private readonly forget: (change: TenantChange) => void,
    private readonly centralDomains: readonly string[],
    /** The plugin's clock: a removed domain's former name expires by it, and a former name is judged by it. */
    private readonly now?: () => number
  ) {}

  /** A tenant's domains, the primary first, then by name. */
  async list (tenant: Pick<Tenant, 'key'>): Promise<TenantDomain[]> {
    return await domainsOf(this.orm, tenant.key)
  }

  /**
   * Adds a domain: well-formed, lowercase, not central, not another tenant's
   * (FST_TENANCY_INVALID_DOMAIN, FST_TENANCY_DOMAIN_TAKEN), and not one the
   * tenant has already (FST_TENANCY_INVALID_DOMAIN: use makePrimary for it).
   * A tenant's first domain is its primary; `primary: true` makes the new one
   * primary.
   */
  async add (tenant: Pick<Tenant, 'key'>, domain: string, options: { primary?: boolean } = {}): Promise<TenantDomain> {
    const name = checkDomain(domain, this.centralDomains)
    if (options.primary !== undefined && typeof options.primary !== 'boolean') throw new InvalidTenantChangeError('primary is true or false')
    const owner = await freshTenant(this.orm, tenant.key)
    // Refused before `domain.adding` when it is known to be taken; checked again under the lock and by the unique index.
    const holder = await this.orm.em.fork({ clear: true, useContext: false }).findOne(DomainEntity, { domain: name })
    if (holder !== null) throw this.refusal(name, owner, holder.tenant.key)
    await refuseSubdomainDomains(this.orm, [name], this.centralDomains, owner)
    await this.events.emit({ name: 'domain.adding', tenant: owner, domain: name })
    let added: TenantDomain
    try {
      added = await centralTransaction(this.orm, async (run) => {
        await lockTenant(run, owner.key)
        const existing = (await run(`select tenant_key from ${run.tables.domains} where domain = ?`, [name]))[0]
        if (existing !== undefined) throw this.refusal(name, owner, String(existing.tenant_key))
        const hasAny = (await run(`select 1 from ${run.tables.domains} where tenant_key = ? limit 1`, [owner.key])).length > 0
        const primary = options.primary === true || !hasAny
        if (primary) await run(`update ${run.tables.domains} set is_primary = false where tenant_key = ? and is_primary`, [owner.key])
        // Another tenant adding the same domain at this moment waits on the unique index, then one of the two fails with 23505.
        const rows = await run(`insert into ${run.tables.domains} (domain, tenant_key, is_primary) values (?, ?, ?) returning id`, [name, owner.key, primary])
        return { id: Number(rows[0]?.id), domain: name, primary }
      }, this.now)
    } catch (error) {
      if (isUniqueViolation(error, 'domain')) throw new DomainTakenError(name)
      throw error
    }
    this.forget(tenantChange([owner.key], { domains: [name] }))
    await this.events.emit({ name: 'domain.added', tenant: owner, domain: name })
    return added
  }

  /**
   * Removes one of the tenant's domains (FST_TENANCY_DOMAIN_NOT_FOUND when it
   * has no such domain). When it was the primary, the tenant's oldest
   * remaining domain becomes primary; with none left, it has none.
   */
  async remove (tenant: Pick<Tenant, 'key'>, domain: string): Promise<void> {
    const owner = await this.ownerOf(tenant, domain)
    await this.events.emit({ name: 'domain.removing', tenant: owner, domain })
    await centralTransaction(this.orm, async (run) => {
      await lockTenant(run, owner.key)
      const removed = await run(`delete from ${run.tables.domains} where domain = ? and tenant_key = ? returning is_primary`, [domain, owner.key])
      if (removed[0] === undefined) throw new DomainNotFoundError(domain, owner.identifier)
      if (removed[0].is_primary === true) await this.promoteOldest(run, owner.key)
    }, this.now)
    this.forget(tenantChange([owner.key], { domains: [domain] }))
    await this.events.emit({ name: 'domain.removed', tenant: owner, domain })
  }

  /** Makes one of the tenant's domains its primary (and the others not). */
  async makePrimary (tenant: Pick<Tenant, 'key'>, domain: string): Promise<void> {
    const owner = await this.ownerOf(tenant, domain)
    await this.events.emit({ name: 'domain.primary-changing', tenant: owner, domain })
    await centralTransaction(this.orm, async (run) => {
      await lockTenant(run, owner.key)
      const found = await run(`select 1 from ${run.tables.domains} where domain = ? and tenant_key = ?`, [domain, owner.key])
      if (found.length === 0) throw new DomainNotFoundError(domain, owner.identifier)
      // Two statements, not one: the old primary is cleared before the new one is set.
      await run(`update ${run.tables.domains} set is_primary = false where tenant_key = ? and is_primary and domain <> ?`, [owner.key, domain])
      await run(`update ${run.tables.domains} set is_primary = true where domain = ?`, [domain])
    })
    this.forget(tenantChange([owner.key], { domains: [domain] }))
    await this.events.emit({ name: 'domain.primary-changed', tenant: owner, domain })
  }

  /** The tenant, once it is known to have the domain (checked again under the lock). */
  private async ownerOf (tenant: Pick<Tenant, 'key'>, domain: unknown): Promise<Tenant> {
    const owner = await freshTenant(this.orm, tenant.key)
    const name = typeof domain === 'string' ? domain : String(domain)
    if (!(await this.list(owner)).some((d) => d.domain === name)) throw new DomainNotFoundError(name.slice(0, 100), owner.identifier)
    return owner
  }

  /** Why a domain that exists already cannot be added. */
  private refusal (domain: string, owner: Tenant, holderKey: string): Error {
    return holderKey === owner.key ? new InvalidDomainError(domain, `tenant "${owner.identifier}" has it already`) : new DomainTakenError(domain)
  }

  private async promoteOldest (run: Run, tenantKey: string): Promise<void> {
    await run(`update ${run.tables.domains} set is_primary = true where id = (select min(id) from ${run.tables.domains} where tenant_key = ?)`, [tenantKey])
  }
}
