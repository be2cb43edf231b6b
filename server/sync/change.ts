/**
 * One synced change, as written to an outbox in the same transaction as the
 * change itself, and as carried by a queued job. Values are the columns'
 * stored values, so custom types and accessors sync as they are stored.
 */
export interface SyncChange {
  resource: string
  globalId: string
  /**
   * - `update`: synced attributes changed on the origin
   * - `create`: a tenant made a copy with a global id (the central row follows 1:1)
   * - `delete`: the origin deleted it (central: every copy goes; tenant: only its pivot row)
   * - `attach` / `detach`: a pivot row was added or removed for `tenant`
   */
  op: 'update' | 'create' | 'delete' | 'attach' | 'detach'
  /** Tenant key of the origin, or null for the central database. */
  origin: string | null
  /** For attach and detach: the tenant's key. For a central delete: every tenant that had a copy. */
  tenants?: string[]
  /** Column values (synced columns for update; the whole row for create). */
  values?: Record<string, unknown>
  /** Order of the change among all changes (a central sequence); a copy never takes an older one. */
  version: string
}
