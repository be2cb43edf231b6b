import type { Tenant } from '../tenant.js'
import type { TenantLocker } from '../database/advisory-locks.js'
import type { CentralTables } from '../database/central-schema.js'
import type { TenantChange } from '../providers/invalidation.js'
import type { CentralSnapshot } from './bundle-resources.js'
import type { RequestHold } from './request-hold.js'
import { InvalidSwapError, TenantNotFoundError } from '../errors.js'

export interface SwapParts {
  tables: CentralTables
  /** Runs central statements in one transaction (the swap commits whole or not at all). */
  transaction: CentralSnapshot
  lock: TenantLocker
  /** A tenant by identifier or key, from the central database (not cached). */
  find: (name: string) => Promise<Tenant | null>
  /** Whether a move of the tenant is under way (it holds the tenant itself). */
  moving: (key: string) => Promise<boolean>
  /** Holds or releases a tenant's requests (its row's `held_at`). */
  hold: (key: string, held: boolean) => Promise<void>
  requests: Pick<RequestHold, 'idle'>
  forget: (change: TenantChange) => void
  /** How long the swap waits for this instance's requests in flight (`moves.drainMs`). */
  drainMs: number
}

export interface SwapResult {
  /** The tenant now serving under the original identifier and domains (the copy's key and data). */
  serving: Tenant
  /** The former tenant, kept under the copy's identifier, held (it serves no request), for a later delete. */
  kept: Tenant
}

/**
 * Swaps a restored copy in for a tenant (see docs/operations.md, "Undoing a
 * tenant's bad day"): the copy's row takes the tenant's identifier and
 * domains, and the tenant's row (its data untouched) takes the copy's
 * identifier and stays held, so it serves no one until it is deleted. Both
 * tenants' lifecycle locks are held (in key order); both are held for
 * requests while this instance's in-flight ones end; then one central
 * transaction changes both rows and releases the copy. A crash before that
 * commit leaves both held and unchanged: `swap` again finishes it. Requests
 * held at the swap for the old tenant wait out their bound and get 503
 * FST_TENANCY_MOVING with Retry-After, so none of them writes into the kept
 * data; their retries reach the copy.
 */
export class TenantSwap {
  constructor (private readonly parts: SwapParts) {}

  async swap (tenantName: string, copyName: string): Promise<SwapResult> {
    const tenant = await this.mustFind(tenantName)
    const copy = await this.mustFind(copyName)
    const refuse = (why: string): never => { throw new InvalidSwapError(tenant.identifier, copy.identifier, why) }
    if (tenant.key === copy.key) refuse('they are the same tenant')
    const [first, second] = [tenant.key, copy.key].sort() as [string, string]
    return await this.parts.lock(first, async () => await this.parts.lock(second, async () => {
      // Read again under the locks: a rename, delete or move may have come in between.
      const t = await this.mustFind(tenant.key)
      const c = await this.mustFind(copy.key)
      for (const x of [t, c]) {
        if (x.status !== 'active' && x.status !== 'suspended') refuse(`"${x.identifier}" is ${x.status}; only active and suspended tenants are swapped`)
        if (await this.parts.moving(x.key)) refuse(`"${x.identifier}" is being moved; finish the move (tenants:move) or undo it (--abort) first`)
      }
      const { tables } = this.parts
      const domains = async (key: string): Promise<string[]> => (await this.parts.transaction(async (run) => await run(`select domain from ${tables.domains} where tenant_key = ? order by id`, [key]))).map((d) => String(d.domain))
      const tenantDomains = await domains(t.key)
      if ((await domains(c.key)).length > 0) refuse(`the copy "${c.identifier}" has domains of its own; import it with --as, which leaves the domains with the original`)
      const change = { keys: [t.key, c.key], identifiers: [t.identifier, c.identifier], resourceKeys: [], domains: tenantDomains }
      await this.parts.hold(t.key, true)
      await this.parts.hold(c.key, true)
      this.parts.forget(change)
      await Promise.all([this.parts.requests.idle(t.key, this.parts.drainMs), this.parts.requests.idle(c.key, this.parts.drainMs)])
      await this.parts.transaction(async (run) => {
        // A swap is not a rename: the names change hands at once, and none of them is kept to redirect (the rename triggers record them, and refuse a name that still redirects).
        const temporary = `swap-${t.key}`.slice(0, 63)
        const unrecord = async (): Promise<void> => {
          await run(`delete from ${tables.tenant_former_names} where tenant_key in (?, ?) and ((kind = 'identifier' and name in (?, ?, ?)) or (kind = 'domain' and name in (select jsonb_array_elements_text(?::jsonb))))`,
            [t.key, c.key, t.identifier, c.identifier, temporary, JSON.stringify(tenantDomains)])
        }
        // Through a free identifier: both are unique.
        await run(`update ${tables.tenants} set identifier = ? where key = ?`, [temporary, t.key])
        await unrecord()
        await run(`update ${tables.tenants} set identifier = ?, held_at = null, updated_at = now() where key = ?`, [t.identifier, c.key])
        await unrecord()
        await run(`update ${tables.tenants} set identifier = ?, updated_at = now() where key = ?`, [c.identifier, t.key])
        await unrecord()
        await run(`update ${tables.domains} set tenant_key = ? where tenant_key = ?`, [c.key, t.key])
        await unrecord()
      })
      this.parts.forget(change)
      return { serving: await this.mustFind(c.key), kept: await this.mustFind(t.key) }
    }))
  }

  private async mustFind (name: string): Promise<Tenant> {
    const tenant = await this.parts.find(name)
    if (tenant === null) throw new TenantNotFoundError(name)
    return tenant
  }
}
