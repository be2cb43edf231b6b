import type { TenancyApi } from '../tenancy-api.js'
import type { AdminSessions } from './auth/sessions.js'
import type { AuditLog } from './audit/audit-log.js'
import type { OneTimeNotice } from './ui/one-time-notice.js'

/** What every admin route module gets. */
export interface AdminContext {
  tenancy: TenancyApi
  /** The tenancy's central domains (links to a tenant are built from them). */
  centralDomains: readonly string[]
  /** The tenancy's clock (ms), so maintenance windows agree with the core's. */
  clock: () => number
  /** How long a former name (a renamed identifier, a removed domain) keeps redirecting, in ms (the core's `renames.keepMs`). */
  renamesKeepMs: number
  /** The names of the database hosts (`database.hosts`), where a tenant can be moved or imported to. */
  hosts: readonly string[]
  /** The host a tenant without one of its own lives on (`database.defaultHost`). */
  defaultHost: string
  /** Strategy `shared`: one set of tables for every tenant, migrated once (no rollout). */
  sharedTables: boolean
  sessions: AdminSessions
  /** The audit log: every admin action is recorded here (`ctx.audit.recordFor(request, 'tenant.suspend', { tenant })`). */
  audit: AuditLog
  /** Notices never stored server-side (generated passwords), carried to the next page once. */
  oneTime: OneTimeNotice
  /** URL prefix of the admin (default `/admin`). */
  prefix: string
  /** Whether cookies get the Secure flag and the `__Host-` prefix. */
  secureCookies: boolean
  /** The session cookie's name: `__Host-ft_admin`, or `ft_admin` with `secureCookies: false`. */
  cookieName: string
  /** The cookies' path: `/` (required by `__Host-`), or the prefix with `secureCookies: false`. */
  cookiePath: string
  /** GET paths the admin serves: the navigation links only to areas that exist. */
  areas: Set<string>
}
