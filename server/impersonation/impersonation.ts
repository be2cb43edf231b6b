import { createHash, randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { SqlExecutor } from '../providers/provider.js'
import type { Tenant } from '../tenant.js'
import { ImpersonationRefusedError } from '../errors.js'
import type { CentralTables } from '../database/central-schema.js'

/** How long an impersonation link works: once, within a minute. */
export const TOKEN_TTL_MS = 60_000
/** How long an impersonation lasts at most once opened. */
export const SESSION_TTL_MS = 60 * 60 * 1000

/** Who opened a tenant app as whom; `request.impersonation` on the tenant's requests. */
export interface ImpersonationSession {
  /** The impersonated user's id, as given to `issue()` (for synced users: the global id). */
  userId: string
  /** The admin who opened it, when known. */
  admin: { id: string | null, email: string | null }
  tenantKey: string
  startedAt: Date
}

/** What happened to an impersonation, for the audit log: `impersonation.onUse(fn)`. */
export interface ImpersonationUse {
  action: 'issued' | 'started' | 'refused' | 'ended'
  tenant: Pick<Tenant, 'key' | 'identifier'>
  userId: string | null
  admin: { id: string | null, email: string | null }
  /** For `refused`: why. */
  reason?: string
}

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex')

export interface ImpersonationOptions {
  execute: SqlExecutor
  /** The central tables' names in SQL. */
  tables: CentralTables
  now: () => number
}

/**
 * Single-use impersonation links: an admin's `issue()` makes a token bound
 * to one tenant and one user that works once within 60 seconds; the tenant
 * app redeems it for a session kept in a cookie until the user ends it.
 * Only hashes of tokens and sessions are stored.
 */
export class Impersonation {
  private readonly options: ImpersonationOptions
  private readonly listeners: Array<(use: ImpersonationUse) => void | Promise<void>> = []

  constructor (options: ImpersonationOptions) {
    this.options = options
  }

  /** Calls `fn` for every issue, use, refusal and end (the admin writes them to its audit log). */
  onUse (fn: (use: ImpersonationUse) => void | Promise<void>): () => void {
    this.listeners.push(fn)
    return () => { const i = this.listeners.indexOf(fn); if (i >= 0) this.listeners.splice(i, 1) }
  }

  /** Makes a single-use token that opens `tenant`'s app as `userId` within 60 seconds. */
  async issue (input: { tenant: Pick<Tenant, 'key' | 'identifier'>, userId: string, admin?: { id?: string | null, email?: string | null } }): Promise<{ token: string, expiresAt: Date }> {
    if (typeof input.userId !== 'string' || input.userId.length === 0 || input.userId.length > 255) throw new ImpersonationRefusedError('the user id must be 1 to 255 characters')
    const token = randomBytes(32).toString('base64url')
    const expiresAt = new Date(this.options.now() + TOKEN_TTL_MS)
    const admin = { id: input.admin?.id ?? null, email: input.admin?.email ?? null }
    await this.options.execute(
      `insert into ${this.options.tables.impersonation_tokens} (id, token_hash, tenant_key, user_id, admin_id, admin_email, expires_at) values (?, ?, ?, ?, ?, ?, ?)`,
      [uuidv7(), sha256(token), input.tenant.key, input.userId, admin.id, admin.email, expiresAt])
    await this.emit({ action: 'issued', tenant: input.tenant, userId: input.userId, admin })
    return { token, expiresAt }
  }

  /**
   * Uses a token on `tenant`: the first use burns it, whatever the outcome.
   * Resolves with the session secret; throws FST_TENANCY_IMPERSONATION_REFUSED
   * when it was used before, is late, is for another tenant, or is unknown.
   */
  async redeem (token: string, tenant: Pick<Tenant, 'key' | 'identifier'>): Promise<{ secret: string, session: ImpersonationSession }> {
    const hash = typeof token === 'string' && token.length > 0 && token.length <= 200 ? sha256(token) : ''
    const secret = randomBytes(32).toString('base64url')
    const rows = await this.options.execute(
      `update ${this.options.tables.impersonation_tokens} set used_at = now(), session_hash = ? where token_hash = ? and used_at is null returning tenant_key, user_id, admin_id, admin_email, expires_at, used_at`,
      [sha256(secret), hash])
    const row = rows[0]
    if (row === undefined) {
      const known = await this.options.execute(`select tenant_key, user_id, admin_id, admin_email from ${this.options.tables.impersonation_tokens} where token_hash = ?`, [hash])
      const old = known[0]
      const reason = old === undefined ? 'it is not a link we made' : 'it was used already'
      await this.emit({ action: 'refused', tenant, userId: (old?.user_id as string | undefined) ?? null, admin: adminOf(old), reason })
      throw new ImpersonationRefusedError(reason)
    }
    let reason: string | null = null
    if (row.tenant_key !== tenant.key) reason = 'it was made for another tenant'
    else if (new Date(row.expires_at as string).getTime() <= this.options.now()) reason = 'it expired (links work for 60 seconds)'
    if (reason !== null) {
      // Burnt, and the session it would have opened is closed before it was ever handed out.
      await this.options.execute(`update ${this.options.tables.impersonation_tokens} set ended_at = now() where token_hash = ?`, [hash])
      await this.emit({ action: 'refused', tenant, userId: String(row.user_id), admin: adminOf(row), reason })
      throw new ImpersonationRefusedError(reason)
    }
    const session: ImpersonationSession = {
      userId: String(row.user_id),
      admin: adminOf(row),
      tenantKey: tenant.key,
      startedAt: new Date(row.used_at as string)
    }
    await this.emit({ action: 'started', tenant, userId: session.userId, admin: session.admin })
    return { secret, session }
  }

  /** The open session a cookie's secret names on `tenant`, or null (ended, over an hour old, or another tenant's). */
  async session (secret: string, tenant: Pick<Tenant, 'key'>): Promise<ImpersonationSession | null> {
    if (secret.length === 0 || secret.length > 200) return null
    const rows = await this.options.execute(
      `select tenant_key, user_id, admin_id, admin_email, used_at from ${this.options.tables.impersonation_tokens} where session_hash = ? and ended_at is null`,
      [sha256(secret)])
    const row = rows[0]
    if (row === undefined || row.tenant_key !== tenant.key) return null
    const startedAt = new Date(row.used_at as string)
    if (startedAt.getTime() + SESSION_TTL_MS <= this.options.now()) return null
    return { userId: String(row.user_id), admin: adminOf(row), tenantKey: tenant.key, startedAt }
  }

  /** Ends the session a cookie's secret names; returns it, or null when there was none. */
  async end (secret: string, tenant: Pick<Tenant, 'key' | 'identifier'>): Promise<ImpersonationSession | null> {
    if (secret.length === 0 || secret.length > 200) return null
    const rows = await this.options.execute(
      `update ${this.options.tables.impersonation_tokens} set ended_at = now() where session_hash = ? and tenant_key = ? and ended_at is null returning user_id, admin_id, admin_email, used_at`,
      [sha256(secret), tenant.key])
    const row = rows[0]
    if (row === undefined) return null
    const session = { userId: String(row.user_id), admin: adminOf(row), tenantKey: tenant.key, startedAt: new Date(row.used_at as string) }
    await this.emit({ action: 'ended', tenant, userId: session.userId, admin: session.admin })
    return session
  }

  private async emit (use: ImpersonationUse): Promise<void> {
    for (const fn of this.listeners) await fn(use)
  }
}

function adminOf (row: Record<string, unknown> | undefined): { id: string | null, email: string | null } {
  return { id: (row?.admin_id as string | null | undefined) ?? null, email: (row?.admin_email as string | null | undefined) ?? null }
}
