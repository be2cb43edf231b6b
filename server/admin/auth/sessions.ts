import { createHash, randomBytes } from 'node:crypto'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Permission } from '../../entities/central/admin.entity.js'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'

export interface SignedInAdmin {
  id: string
  email: string
  name: string
  permissions: Set<Permission>
  sessionId: string
  /** Whether notices wait in the session's flash (a page with none spares the query that takes them). */
  hasFlash?: boolean
}

export interface FlashMessage {
  type: 'success' | 'error' | 'info'
  text: string
}

/** A session token's database id: its SHA-256, so a leaked table cannot be replayed as cookies. */
export function idOf (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/**
 * Server-side admin sessions in the central database: logout and
 * deactivation end them at once. A session ends at its absolute lifetime or
 * after `idleMs` without a request, whichever comes first; ended sessions
 * are deleted, not just ignored.
 */
export class AdminSessions {
  private readonly orm: MikroORM
  private readonly ttlMs: number
  private readonly idleMs: number

  /** The central tables' names in SQL. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  constructor (orm: MikroORM, ttlMs: number, idleMs: number) {
    this.orm = orm
    this.ttlMs = ttlMs
    this.idleMs = idleMs
  }

  /**
   * Starts a new session (a new id at every sign-in) and returns its token
   * for the cookie. Given the password hash the sign-in checked, the session
   * is made only while that is still the admin's password: a password
   * changed during the check (which ends every session) wins, and the
   * answer is null.
   */
  async create (adminId: string, checkedHash?: string): Promise<string | null> {
    const token = randomBytes(32).toString('base64url')
    await this.sweep()
    const rows = await centralSql(this.orm)(
      `insert into ${this.t.admin_sessions} (id, admin_id, expires_at)
       select ?, ?, ? where ${checkedHash === undefined ? 'true' : `exists (select 1 from ${this.t.admins} where id = ? and password_hash = ? and active)`}
       returning id`,
      [idOf(token), adminId, new Date(Date.now() + this.ttlMs), ...(checkedHash === undefined ? [] : [adminId, checkedHash])])
    return rows.length === 0 ? null : token
  }

  /** How many live sessions an admin has (browsers signed in). */
  async countOf (adminId: string): Promise<number> {
    const rows = await centralSql(this.orm)(
      `select count(*)::int as n from ${this.t.admin_sessions} where admin_id = ? and expires_at > now() and last_seen_at > now() - make_interval(secs => ?)`, [adminId, this.idleMs / 1000])
    return Number(rows[0]?.n ?? 0)
  }

  /** Deletes every session past its lifetime or idle for too long. */
  async sweep (): Promise<number> {
    const rows = await centralSql(this.orm)(
      `delete from ${this.t.admin_sessions} where expires_at <= now() or last_seen_at <= now() - make_interval(secs => ?) returning id`,
      [this.idleMs / 1000])
    return rows.length
  }

  /** The signed-in admin of a session token, or null when the session is unknown, expired, idle too long, or its admin inactive. */
  async load (token: string): Promise<SignedInAdmin | null> {
    const id = idOf(token)
    // One round trip: marks the session as used (at most once a minute, to spare writes) when it is
    // still alive, deletes it when it is not, and reads its admin (none when the admin is inactive).
    const rows = await centralSql(this.orm)(
      `with touched as (
         update ${this.t.admin_sessions} set last_seen_at = case when last_seen_at < now() - interval '1 minute' then now() else last_seen_at end
          where id = ? and expires_at > now() and last_seen_at > now() - make_interval(secs => ?) returning id, admin_id, jsonb_array_length(flash) > 0 as has_flash
       ), ended as (
         delete from ${this.t.admin_sessions} where id = ? and not exists (select 1 from touched) returning id
       )
       select a.id, a.email, a.name, t.id as session_id, t.has_flash,
              coalesce(array_agg(distinct p.permission) filter (where p.permission is not null), '{}') as permissions
         from touched t
         join ${this.t.admins} a on a.id = t.admin_id and a.active
         left join ${this.t.admin_role_assignments} ra on ra.admin_id = a.id
         left join ${this.t.admin_roles} r on r.id = ra.role_id
         left join lateral unnest(r.permissions) as p(permission) on true
        group by a.id, t.id, t.has_flash`, [id, this.idleMs / 1000, id])
    const row = rows[0]
    if (row === undefined) return null
    return {
      id: row.id,
      email: row.email,
      name: row.name,
      sessionId: row.session_id,
      hasFlash: row.has_flash === true,
      permissions: new Set(row.permissions as Permission[])
    }
  }

  async destroy (token: string): Promise<void> {
    await centralSql(this.orm)(`delete from ${this.t.admin_sessions} where id = ?`, [idOf(token)])
  }

  /** Ends every session of an admin (deactivation, role changes that remove access). */
  async destroyAll (adminId: string): Promise<void> {
    await centralSql(this.orm)(`delete from ${this.t.admin_sessions} where admin_id = ?`, [adminId])
  }

  async pushFlash (sessionId: string, message: FlashMessage): Promise<void> {
    await centralSql(this.orm)(
      `update ${this.t.admin_sessions} set flash = flash || ?::jsonb where id = ?`, [JSON.stringify([message]), sessionId])
  }

  /** Returns and clears the session's flash messages. */
  async takeFlash (sessionId: string): Promise<FlashMessage[]> {
    const rows = await centralSql(this.orm)(
      `update ${this.t.admin_sessions} s set flash = '[]' from (select flash from ${this.t.admin_sessions} where id = ? for update) old
        where s.id = ? returning old.flash`, [sessionId, sessionId])
    const flash = rows[0]?.flash
    return (typeof flash === 'string' ? JSON.parse(flash) : flash ?? []) as FlashMessage[]
  }
}
