import type { MikroORM } from '@mikro-orm/postgresql'
import { hashPassword } from '../auth/password.js'
import { centralTables, type CentralTables } from '../../database/central-schema.js'

/** An admin account as its pages and the CLI read it. */
export interface AdminAccount { id: string, email: string, name: string, active: boolean }

/** The admin panel's password rule, for the forms and the CLI. */
export const PASSWORD_MIN = 12
export const PASSWORD_MAX = 200

/** Why a new password is refused, or null when it may be used. */
export function passwordProblem (password: string): string | null {
  if (password.length < PASSWORD_MIN) return `The password must be at least ${PASSWORD_MIN} characters.`
  if (password.length > PASSWORD_MAX) return `The password must be at most ${PASSWORD_MAX} characters.`
  return null
}

/**
 * Admin accounts' names and passwords: the profile page, a reset by another
 * admin and `fastify-tenancy admin:reset-password` change them here, so a
 * new password always ends the account's sessions in the same transaction.
 */
export class AdminAccounts {
  constructor (private readonly orm: MikroORM) {}

  /** Our central tables, schema-qualified, as raw SQL names them. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private async sql (text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await this.orm.em.getConnection().execute(text, params as any[], 'all')
  }

  private row (r: Record<string, any> | undefined): AdminAccount | null {
    return r === undefined ? null : { id: String(r.id), email: String(r.email), name: String(r.name), active: r.active === true }
  }

  async find (id: string): Promise<AdminAccount | null> {
    return this.row((await this.sql(`select id, email, name, active from ${this.t.admins} where id = ?`, [id]))[0])
  }

  async findByEmail (email: string): Promise<AdminAccount | null> {
    return this.row((await this.sql(`select id, email, name, active from ${this.t.admins} where email = ?`, [email.toLowerCase()]))[0])
  }

  /** The stored hash, for checking the current password before a change. */
  async passwordHash (id: string): Promise<string | null> {
    const r = (await this.sql(`select password_hash from ${this.t.admins} where id = ?`, [id]))[0]
    return r === undefined ? null : String(r.password_hash)
  }

  async rename (id: string, name: string): Promise<void> {
    await this.sql(`update ${this.t.admins} set name = ? where id = ?`, [name, id])
  }

  /**
   * Sets a new password and ends every session of the account, together: no
   * browser signed in with the old password stays signed in. A sign-in that
   * checked the old password while this ran gets no session either (see
   * AdminSessions.create).
   */
  async setPassword (id: string, password: string): Promise<void> {
    const hash = await hashPassword(password)
    const conn = this.orm.em.getConnection()
    await conn.transactional(async (trx) => {
      await conn.execute(`update ${this.t.admins} set password_hash = ? where id = ?`, [hash, id], 'run', trx)
      await conn.execute(`delete from ${this.t.admin_sessions} where admin_id = ?`, [id], 'run', trx)
    })
  }
}
