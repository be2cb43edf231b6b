import { createHash, randomBytes } from 'node:crypto'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Permission } from '../entities/central/admin.entity.js'

export interface SignedInAdmin {
  id: string
  email: string
  name: string
  permissions: Set<Permission>
  sessionId: string
}

export interface FlashMessage {
  type: 'success' | 'error' | 'info'
  text: string
}

/** A session token's database id: its SHA-256, so a leaked table cannot be replayed as cookies. */
function idOf (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Server-side admin sessions in the central database: logout and deactivation end them at once. */
export class AdminSessions {
  private readonly orm: MikroORM
  private readonly ttlMs: number

  constructor (orm: MikroORM, ttlMs: number) {
    this.orm = orm
    this.ttlMs = ttlMs
  }

  /** Starts a new session (a new id at every sign-in) and returns its token for the cookie. */
  async create (adminId: string): Promise<string> {
    const token = randomBytes(32).toString('base64url')
    await this.orm.em.getConnection().execute(
      'insert into admin_sessions (id, admin_id, expires_at) values (?, ?, ?)',
      [idOf(token), adminId, new Date(Date.now() + this.ttlMs)], 'run')
    return token
  }

  /** The signed-in admin of a session token, or null when the session is unknown, expired, or its admin inactive. */
  async load (token: string): Promise<SignedInAdmin | null> {
    const rows = await this.orm.em.getConnection().execute(
      `select a.id, a.email, a.name, s.id as session_id,
              coalesce(array_agg(distinct p.permission) filter (where p.permission is not null), '{}') as permissions
         from admin_sessions s
         join admins a on a.id = s.admin_id and a.active
         left join admin_role_assignments ra on ra.admin_id = a.id
         left join admin_roles r on r.id = ra.role_id
         left join lateral unnest(r.permissions) as p(permission) on true
        where s.id = ? and s.expires_at > now()
        group by a.id, s.id`, [idOf(token)], 'all')
    const row = rows[0]
    if (row === undefined) return null
    return { id: row.id, email: row.email, name: row.name, sessionId: row.session_id, permissions: new Set(row.permissions as Permission[]) }
  }

  async destroy (token: string): Promise<void> {
    await this.orm.em.getConnection().execute('delete from admin_sessions where id = ?', [idOf(token)], 'run')
  }

  /** Ends every session of an admin (deactivation, role changes that remove access). */
  async destroyAll (adminId: string): Promise<void> {
    await this.orm.em.getConnection().execute('delete from admin_sessions where admin_id = ?', [adminId], 'run')
  }

  async pushFlash (sessionId: string, message: FlashMessage): Promise<void> {
    await this.orm.em.getConnection().execute(
      'update admin_sessions set flash = flash || ?::jsonb where id = ?', [JSON.stringify([message]), sessionId], 'run')
  }

  /** Returns and clears the session's flash messages. */
  async takeFlash (sessionId: string): Promise<FlashMessage[]> {
    const rows = await this.orm.em.getConnection().execute(
      `update admin_sessions s set flash = '[]' from (select flash from admin_sessions where id = ? for update) old
        where s.id = ? returning old.flash`, [sessionId, sessionId], 'all')
    const flash = rows[0]?.flash
    return (typeof flash === 'string' ? JSON.parse(flash) : flash ?? []) as FlashMessage[]
  }
}
