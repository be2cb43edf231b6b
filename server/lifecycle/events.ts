import type { Tenant } from '../tenant.js'

/** Lifecycle events, in pairs: every `-ing` has its `-ed`; `tenant.failed` follows a failed provisioning. */
export type TenancyEventName =
  | 'tenant.creating' | 'tenant.created'
  | 'database.creating' | 'database.created'
  | 'tenant.migrating' | 'tenant.migrated'
  | 'tenant.seeding' | 'tenant.seeded'
  | 'tenant.deleting' | 'tenant.deleted'
  | 'tenant.failed'

export interface TenancyEvent {
  name: TenancyEventName
  tenant: Tenant
  /** For `tenant.failed`: the step that failed and why. */
  step?: string
  error?: Error
  /** For `tenant.migrated`: the migrations that ran. */
  migrations?: string[]
}

export type TenancyListener = (event: TenancyEvent) => void | Promise<void>

/**
 * Lifecycle events. Listeners run in order and are awaited; a listener that
 * throws in an `-ing` or `-ed` event of provisioning fails that step (and the
 * step is undone), so listeners can take part in provisioning.
 */
export class TenancyEvents {
  private readonly listeners = new Map<TenancyEventName, TenancyListener[]>()

  on (name: TenancyEventName, listener: TenancyListener): () => void {
    const list = this.listeners.get(name) ?? []
    list.push(listener)
    this.listeners.set(name, list)
    return () => { this.listeners.set(name, (this.listeners.get(name) ?? []).filter((l) => l !== listener)) }
  }

  async emit (event: TenancyEvent): Promise<void> {
    for (const listener of this.listeners.get(event.name) ?? []) await listener(event)
  }
}
