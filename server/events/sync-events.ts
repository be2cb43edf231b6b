/** Events of resource syncing on `app.tenancy.events`. */
export type SyncEventName = 'sync.saved' | 'sync.deleted' | 'sync.attached' | 'sync.detached' | 'sync.restored'

export const SYNC_EVENT_NAMES: readonly SyncEventName[] = ['sync.saved', 'sync.deleted', 'sync.attached', 'sync.detached', 'sync.restored']

/**
 * One database written by the syncer: fired once for each database a change
 * touched, after that database committed, never for the database the change
 * was made in (its origin).
 */
export interface SyncEvent {
  name: SyncEventName
  /** The resource's name (`users`). */
  resource: string
  globalId: string
  /** Key of the tenant whose database was written; null for the central database. */
  tenant: string | null
  /** Where the change was made: a tenant key, or null for the central database. */
  origin: string | null
}

export type SyncEmit = (event: SyncEvent) => Promise<void>
