import type { MikroORM } from '@mikro-orm/postgresql'
import { v7 as uuidv7 } from 'uuid'
import { hashPassword } from '../auth/password.js'
import { AdminExistsError, RoleNotFoundError } from '../../errors.js'
import { isUniqueViolation } from '../../database/pg-errors.js'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'

/** An admin account as its pages and the CLI read it. */
export interface AdminAccount { id: string, email: string, name: string, active: boolean }

/** The admin panel's password rule, for the forms and the CLI. */
export const PASSWORD_MIN = 12
export const PASSWORD_MAX = 200

/**
 * Why a new password is refused, or null when it may be used: the one rule
 * the panel's forms and the CLI check. `orGenerated` says how the caller
 * lets one be generated instead ("leave it empty"), added to the refusal.
 */
export function passwordProblem (password: string, orGenerated?: string): string | null {
  const or = orGenerated === undefined ? '' : `, or ${orGenerated} to generate one`
  if (password.length < PASSWORD_MIN) return `The password must be at least ${PASSWORD_MIN} characters${or}.`
  if (password.length > PASSWORD_MAX) return `The password must be at most ${PASSWORD_MAX} characters${or}.`
  return null
}

/** An admin role and the permissions it grants. */
export interface AdminRole { id: number, name: string, permissions: string[] }

/** An admin as the Admins list shows it. */
export interface AdminListing extends AdminAccount { roles: string, lastLoginAt: Date | null }

/** A new admin account: the password in clear (hashed here), the roles by id or by name. */
export interface NewAdmin { email: string, name: string, password: string, roleIds?: number[], roleName?: string }

/**
 * The owner of the admin accounts and roles (tables `admins`, `admin_roles`,
 * `admin_role_assignments`): the panel's pages, `fastify-tenancy admin:create`
 * and `admin:reset-password` and the demo create and change admins here, so a
 * new password always ends the account's sessions in the same transaction and
 * an email taken by two at once is one AdminExistsError, never a raw 23505.
 * Sessions are AdminSessions' (sessions.ts).
 */
export class AdminAccounts {
  constructor (private readonly orm: MikroORM) {}

  /** Our central tables, schema-qualified, as raw SQL names them. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private async sql (text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await centralSql(this.orm)(text, params)
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

  /**
   * Creates an admin with its roles in one transaction. AdminExistsError when
   * the email is taken (also by another creation at the same moment);
   * RoleNotFoundError when `roleName` names no role.
   */
  async create (admin: NewAdmin): Promise<string> {
    const email = admin.email.toLowerCase()
    if (await this.findByEmail(email) !== null) throw new AdminExistsError(email)
    let roleIds = admin.roleIds ?? []
    if (admin.roleName !== undefined) {
      const role = (await this.sql(`select id from ${this.t.admin_roles} where name = ?`, [admin.roleName]))[0]
      if (role === undefined) throw new RoleNotFoundError(admin.roleName)
      roleIds = [...roleIds, Number(role.id)]
    }
    const id = uuidv7()
    const hash = await hashPassword(admin.password)
    const conn = this.orm.em.getConnection()
    try {
      await conn.transactional(async (trx) => {
        await conn.execute(`insert into ${this.t.admins} (id, email, name, password_hash) values (?, ?, ?, ?)`, [id, email, admin.name, hash], 'run', trx)
        for (const roleId of roleIds) await conn.execute(`insert into ${this.t.admin_role_assignments} (admin_id, role_id) values (?, ?)`, [id, roleId], 'run', trx)
      })
    } catch (error) {
      // Another creation took the email between the check and the insert.
      if (isUniqueViolation(error) && await this.findByEmail(email) !== null) throw new AdminExistsError(email)
      throw error
    }
    return id
  }

  /** Changes an admin's name, whether it may sign in, and its roles, together. */
  async update (id: string, change: { name: string, active: boolean, roleIds: number[] }): Promise<void> {
    const conn = this.orm.em.getConnection()
    await conn.transactional(async (trx) => {
      await conn.execute(`update ${this.t.admins} set name = ?, active = ? where id = ?`, [change.name, change.active, id], 'run', trx)
      await conn.execute(`delete from ${this.t.admin_role_assignments} where admin_id = ?`, [id], 'run', trx)
      for (const roleId of change.roleIds) await conn.execute(`insert into ${this.t.admin_role_assignments} (admin_id, role_id) values (?, ?)`, [id, roleId], 'run', trx)
    })
  }

  /** Every admin with its role names and last sign-in, by name. */
  async list (): Promise<AdminListing[]> {
    const rows = await this.sql(`select a.id, a.email, a.name, a.active, a.last_login_at,
      coalesce(string_agg(r.name, ', ' order by r.name), '') as roles
      from ${this.t.admins} a left join ${this.t.admin_role_assignments} ra on ra.admin_id = a.id left join ${this.t.admin_roles} r on r.id = ra.role_id
      group by a.id order by a.name, a.email`)
    return rows.map((r) => ({
      id: String(r.id),
      email: String(r.email),
      name: String(r.name),
      active: r.active === true,
      roles: String(r.roles),
      lastLoginAt: r.last_login_at === null ? null : new Date(r.last_login_at)
    }))
  }

  /** The ids of the roles an admin has. */
  async roleIdsOf (id: string): Promise<number[]> {
    return (await this.sql(`select role_id from ${this.t.admin_role_assignments} where admin_id = ?`, [id])).map((r) => Number(r.role_id))
  }

  /** What sign-in checks: the account of an email with its stored hash, or null. */
  async credentials (email: string): Promise<{ id: string, passwordHash: string, active: boolean } | null> {
    const r = (await this.sql(`select id, password_hash, active from ${this.t.admins} where email = ?`, [email.toLowerCase()]))[0]
    return r === undefined ? null : { id: String(r.id), passwordHash: String(r.password_hash), active: r.active === true }
  }

  /**
   * Notes a sign-in; with `upgrade`, also replaces the hash `checkedHash`
   * by it (a hash made at an older cost), unless the password changed meanwhile.
   */
  async signedIn (id: string, checkedHash: string, upgrade: string | null): Promise<void> {
    if (upgrade === null) await this.sql(`update ${this.t.admins} set last_login_at = now() where id = ?`, [id])
    else await this.sql(`update ${this.t.admins} set last_login_at = now(), password_hash = ? where id = ? and password_hash = ?`, [upgrade, id, checkedHash])
  }

  /** Every role, by name. */
  async roles (): Promise<AdminRole[]> {
    return (await this.sql(`select id, name, permissions from ${this.t.admin_roles} order by name`)).map((r) => ({ id: Number(r.id), name: String(r.name), permissions: r.permissions as string[] }))
  }

  /** The permissions a set of role ids grants. */
  async permissionsOf (roleIds: number[]): Promise<Set<string>> {
    if (roleIds.length === 0) return new Set()
    const rows = await this.sql(`select unnest(permissions) as p from ${this.t.admin_roles} where id in (?)`, [roleIds])
    return new Set(rows.map((r) => String(r.p)))
  }

  /** Creates a role; false when a role has this name already. */
  async createRole (name: string, permissions: string[]): Promise<boolean> {
    try {
      const rows = await this.sql(`insert into ${this.t.admin_roles} (name, permissions) values (?, ?::text[]) on conflict (name) do nothing returning id`, [name, `{${permissions.join(',')}}`])
      return rows.length > 0
    } catch (error) {
      if (isUniqueViolation(error)) return false
      throw error
    }
  }
}
