import type { MikroORM } from '@mikro-orm/postgresql'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'

/** A central synced user as the admin shows it. */
export interface UserRow { globalId: string, name: string, email: string, tenants?: number }

const USER_ORDER = { name: 'lower(u.name)', email: 'u.email', tenants: 'tenants' } as const
export type UserSort = keyof typeof USER_ORDER

/** `%` `_` and `\` stand for themselves in a search. */
const like = (text: string): string => `%${text.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`

/**
 * Every statement the admin runs on the central `users` and `tenant_users`
 * tables, in one place. Tenants themselves are read through
 * `app.tenancy.tenants`; changes to users go through the ORM, so resource
 * syncing carries them to the tenant copies.
 */
export class UserQueries {
  constructor (private readonly orm: MikroORM) {}

  /** Our central tables, schema-qualified, as raw SQL names them. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private async sql (text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await centralSql(this.orm)(text, params)
  }

  /** A page of users matching `q` (name or email), with how many tenants each is in, and how many match in all. */
  async list (query: { q: string, sort: UserSort, dir: 'asc' | 'desc', limit: number, offset: number }): Promise<{ total: number, rows: UserRow[] }> {
    const where = query.q === '' ? '' : "where lower(u.name) like ? escape '\\' or lower(u.email) like ? escape '\\'"
    const args = query.q === '' ? [] : [like(query.q), like(query.q)]
    const dir = query.dir === 'desc' ? 'desc' : 'asc'
    // Only the page's users are counted, unless the page is chosen by that count.
    const page = query.sort === 'tenants'
      ? `select u.global_id, u.name, u.email, coalesce(c.n, 0) as tenants from ${this.t.users} u
           left join (select global_user_id, count(*)::int as n from ${this.t.tenant_users} group by global_user_id) c on c.global_user_id = u.global_id
           ${where} order by tenants ${dir}, u.email limit ${query.limit} offset ${query.offset}`
      : `select u.global_id, u.name, u.email from ${this.t.users} u ${where} order by ${USER_ORDER[query.sort]} ${dir}, u.email limit ${query.limit} offset ${query.offset}`
    const rows = await this.sql(`with page as (${page})
      select p.global_id, p.name, p.email, (select count(*) from ${this.t.tenant_users} t where t.global_user_id = p.global_id)::int as tenants
        from page p order by ${query.sort === 'tenants' ? `p.tenants ${dir}` : `${USER_ORDER[query.sort].replace('u.', 'p.')} ${dir}`}, p.email`, args)
    // A page that is not full says how many match; a full one (or one past the end) asks.
    const total = rows.length > 0 && rows.length < query.limit
      ? query.offset + rows.length
      : rows.length === 0 && query.offset === 0 ? 0 : await this.count(where, args)
    return { total, rows: rows.map((r) => ({ globalId: r.global_id, name: r.name, email: r.email, tenants: r.tenants })) }
  }

  private async count (where: string, args: unknown[]): Promise<number> {
    return Number((await this.sql(`select count(*)::int as n from ${this.t.users} u ${where}`, args))[0]?.n ?? 0)
  }

  async find (globalId: string): Promise<UserRow | null> {
    const r = (await this.sql(`select global_id, name, email from ${this.t.users} where global_id = ?`, [globalId]))[0]
    return r === undefined ? null : { globalId: r.global_id, name: r.name, email: r.email }
  }

  /** Whether another user has this email. */
  async emailTaken (email: string, exceptGlobalId: string | null = null): Promise<boolean> {
    return (await this.sql(`select 1 from ${this.t.users} where email = ? and global_id is distinct from ?`, [email, exceptGlobalId])).length > 0
  }

  /** The keys of the tenants a user is attached to. */
  async tenantKeysOf (globalId: string): Promise<string[]> {
    return (await this.sql(`select tenant_key from ${this.t.tenant_users} where global_user_id = ?`, [globalId])).map((r) => String(r.tenant_key))
  }

  /** A page of the users attached to a tenant, matching `q`, and how many match in all. */
  async ofTenant (tenantKey: string, query: { q: string, limit: number, offset: number }): Promise<{ total: number, rows: UserRow[] }> {
    const search = query.q === '' ? '' : "and (lower(u.name) like ? escape '\\' or lower(u.email) like ? escape '\\')"
    const args = [tenantKey, ...(query.q === '' ? [] : [like(query.q), like(query.q)])]
    const from = `from ${this.t.tenant_users} p join ${this.t.users} u on u.global_id = p.global_user_id where p.tenant_key = ? ${search}`
    const rows = await this.sql(`select u.global_id, u.name, u.email ${from} order by lower(u.name), u.email limit ${query.limit} offset ${query.offset}`, args)
    const total = rows.length > 0 && rows.length < query.limit ? query.offset + rows.length : rows.length === 0 && query.offset === 0 ? 0 : Number((await this.sql(`select count(*)::int as n ${from}`, args))[0]?.n ?? 0)
    return { total, rows: rows.map((r) => ({ globalId: r.global_id, name: r.name, email: r.email })) }
  }

  /** Users not attached to a tenant yet, matching `find`, for the tenant's attach picker. */
  async notInTenant (tenantKey: string, find: string, limit: number): Promise<{ total: number, rows: UserRow[] }> {
    const search = find === '' ? '' : "and (lower(u.name) like ? escape '\\' or lower(u.email) like ? escape '\\')"
    const from = `from ${this.t.users} u where not exists (select 1 from ${this.t.tenant_users} p where p.tenant_key = ? and p.global_user_id = u.global_id) ${search}`
    const args = [tenantKey, ...(find === '' ? [] : [like(find), like(find)])]
    const rows = await this.sql(`select u.global_id, u.name, u.email ${from} order by lower(u.name), u.email limit ${limit}`, args)
    // Without a search, every user not in the tenant: two counts instead of the anti-join over every user.
    const total = rows.length < limit
      ? rows.length
      : find === ''
        ? Number((await this.sql(`select (select count(*) from ${this.t.users}) - (select count(*) from ${this.t.tenant_users} where tenant_key = ?) as n`, [tenantKey]))[0]?.n ?? 0)
        : Number((await this.sql(`select count(*)::int as n ${from}`, args))[0]?.n ?? 0)
    return { total, rows: rows.map((r) => ({ globalId: r.global_id, name: r.name, email: r.email })) }
  }

  /** How many users are attached to a tenant. */
  async countOfTenant (tenantKey: string): Promise<number> {
    return Number((await this.sql(`select count(*)::int as n from ${this.t.tenant_users} where tenant_key = ?`, [tenantKey]))[0]?.n ?? 0)
  }

  /** The user's name when attached to the tenant, else null. */
  async attachedName (tenantKey: string, globalId: string): Promise<string | null> {
    const r = (await this.sql(`select u.name from ${this.t.tenant_users} p join ${this.t.users} u on u.global_id = p.global_user_id where p.tenant_key = ? and p.global_user_id = ?`, [tenantKey, globalId]))[0]
    return r === undefined ? null : String(r.name)
  }
}
