import type { TenancyApi } from '../tenancy-api.js'
import type { AdminSessions } from './sessions.js'

/** What every admin route module gets. */
export interface AdminContext {
  tenancy: TenancyApi
  sessions: AdminSessions
  /** URL prefix of the admin (default `/admin`). */
  prefix: string
  /** Whether cookies get the Secure flag. */
  secureCookies: boolean
  cookieName: string
}
