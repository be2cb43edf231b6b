import type { MikroORM } from '@mikro-orm/postgresql'
import { tenantChange, type TenantChange } from '../providers/invalidation.js'
import type { Tenant, TenantStatus } from '../tenant.js'
import { TenantStatusError } from '../errors.js'
import { centralTransaction } from '../database/central-transaction.js'
import { freshTenant, lockTenant } from './tenant-rows.js'
import type { TenancyEventName, TenancyEvents } from '../events/tenancy-events.js'

interface Transition {
  from: TenantStatus
  to: TenantStatus
  verb: string
  events: [TenancyEventName, TenancyEventName]
}

const SUSPEND: Transition = { from: 'active', to: 'suspended', verb: 'suspended', events: ['tenant.suspending', 'tenant.suspended'] }
const ACTIVATE: Transition = { from: 'suspended', to: 'active', verb: 'activated', events: ['tenant.activating', 'tenant.activated'] }

/**
 * `app.tenancy.suspend()` and `activate()`: an active tenant can be
 * suspended (its requests get 403 FST_TENANCY_TENANT_SUSPENDED) and a
 * suspended one activated; any other move is FST_TENANCY_STATUS_TRANSITION
 * (a failed tenant is retried with `provision()`).
 */
export class TenantStatusChanges {
  constructor (
    private readonly orm: MikroORM,
    private readonly events: TenancyEvents,
    private readonly forget: (change: TenantChange) => void
  ) {}

  async suspend (tenant: Pick<Tenant, 'key'>): Promise<Tenant> {
    return await this.change(tenant, SUSPEND)
  }

  async activate (tenant: Pick<Tenant, 'key'>): Promise<Tenant> {
    return await this.change(tenant, ACTIVATE)
  }

  private async change (tenant: Pick<Tenant, 'key'>, t: Transition): Promise<Tenant> {
    const before = await freshTenant(this.orm, tenant.key)
    if (before.status !== t.from) throw new TenantStatusError(before.identifier, before.status, t.verb)
    await this.events.emit({ name: t.events[0], tenant: before })
    await centralTransaction(this.orm, async (run) => {
      // Checked again under the row lock: of two concurrent calls, the second finds the status changed.
      const row = await lockTenant(run, before.key)
      if (row.status !== t.from) throw new TenantStatusError(row.identifier, row.status, t.verb)
      await run(`update ${run.tables.tenants} set status = ?, updated_at = now() where key = ?`, [t.to, before.key])
    })
    this.forget(tenantChange([before.key]))
    const after = await freshTenant(this.orm, before.key)
    await this.events.emit({ name: t.events[1], tenant: after, previous: before })
    return after
  }
}
