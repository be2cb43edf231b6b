/**
 * One synced change bound for one database, written in the same transaction
 * as the change itself: a tenant's change to its outbox, a central change as
 * one queued job per tenant it is for. Values are the columns' stored values,
 * so custom types and accessors sync as they are stored.
 */
export interface SyncChange {
  resource: string
  globalId: string
  /**
   * - `update`: synced attributes changed (values as the central row holds them after the change)
   * - `create`: a tenant made a copy with a global id (the central row follows 1:1)
   * - `delete`: the origin deleted it (central: every copy goes; tenant: only its mapping row)
   * - `attach` / `detach`: a mapping row was added or removed
   */
  op: 'update' | 'create' | 'delete' | 'attach' | 'detach'
  /** Tenant key of the origin, or null for the central database. */
  origin: string | null
  /** The tenant this change is for (every change a tenant database receives names it). */
  tenant?: string
  /** Column values (synced columns for update; the whole row for create). */
  values?: Record<string, unknown>
  /** For a central update that soft-deleted or restored the row: the copies' `deletedAt` column takes `values.deletedAt`. */
  soft?: 'deleted' | 'restored'
  /** Order of the change among all changes (a central sequence); a copy never takes an older one. Null for tenant changes not yet at the central database. */
  version?: string
  /** Tenant changes: an id, so the central database applies each one once. */
  id?: string
}
