import type { Tenant } from '../tenant.js'
import type { SyncEvent, SyncEventName } from './sync-events.js'

/**
 * Lifecycle events, in pairs: every `-ing` has its `-ed`; `tenant.failed`
 * follows a failed provisioning. An `-ing` comes after the input was checked
 * and before anything is written; its `-ed` comes once the change is saved
 * (a change refused by the database, such as a domain taken meanwhile, ends
 * after its `-ing`).
 */
export type TenancyEventName =
  | 'tenant.creating' | 'tenant.created'
  | 'database.creating' | 'database.created'
  | 'tenant.migrating' | 'tenant.migrated'
  | 'tenant.seeding' | 'tenant.seeded'
  | 'tenant.deleting' | 'tenant.deleted'
  | 'tenant.failed'
  | 'tenant.updating' | 'tenant.updated'
  | 'tenant.suspending' | 'tenant.suspended'
  | 'tenant.activating' | 'tenant.activated'
  | 'domain.adding' | 'domain.added'
  | 'domain.removing' | 'domain.removed'
  | 'domain.primary-changing' | 'domain.primary-changed'

export interface TenancyEvent {
  name: TenancyEventName
  tenant: Tenant
  /** For `tenant.failed`: the step that failed and why. */
  step?: string
  error?: Error
  /** For `tenant.migrated`: the migrations that ran. */
  migrations?: string[]
  /** For `tenant.updating` / `tenant.updated`: the fields asked to change (checked). */
  changes?: TenantChanges
  /** For `-ed` events of `update`, `suspend` and `activate`: the tenant as it was before. */
  previous?: Tenant
  /** For `domain.*` events: the domain added, removed, or made primary. */
  domain?: string
}

/** What `app.tenancy.update(tenant, changes)` takes; a field left out stays as it is. */
export interface TenantChanges {
  /** A new identifier: the same rules as `create` (well-formed, not reserved or central, not taken). */
  identifier?: string
  name?: string
  /** Replaces the tenant's `data` as a whole. */
  data?: Record<string, unknown>
  /** A tenant cluster id, or null for none; moves by the tenant cluster rules. */
  clusterId?: string | null
}

export type TenancyListener = (event: TenancyEvent) => void | Promise<void>

/** A listener of a lifecycle event or of a resource syncing event (`sync.saved`, ...). */
export type Listener<N extends TenancyEventName | SyncEventName> = (event: N extends SyncEventName ? SyncEvent : TenancyEvent) => void | Promise<void>

/**
 * Lifecycle events. Listeners run in order and are awaited; a listener that
 * throws in an `-ing` or `-ed` event of provisioning fails that step (and the
 * step is undone), so listeners can take part in provisioning.
 */
export class TenancyEvents {
  private readonly listeners = new Map<TenancyEventName | SyncEventName, Array<(event: any) => void | Promise<void>>>()

  on<N extends TenancyEventName | SyncEventName> (name: N, listener: Listener<N>): () => void {
    const list = this.listeners.get(name) ?? []
    list.push(listener)
    this.listeners.set(name, list)
    return () => { this.listeners.set(name, (this.listeners.get(name) ?? []).filter((l) => l !== listener)) }
  }

  async emit (event: TenancyEvent | SyncEvent): Promise<void> {
    for (const listener of this.listeners.get(event.name) ?? []) await listener(event)
  }
}
