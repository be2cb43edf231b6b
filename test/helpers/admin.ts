import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { TestContext } from 'node:test'
import { v7 as uuidv7 } from 'uuid'
import { adminPlugin } from '../../server/admin/index.js'
import { hashPassword } from '../../server/admin/auth/password.js'
import type { Permission } from '../../server/entities/central/admin.entity.js'
import type { TenancyDatabaseOptions, TenancyOptions } from '../../server/index.js'
import { buildApp, type TestApp } from './app.js'

export const COOKIE_SECRET = 'test-cookie-secret-that-is-long-enough-0123456789'

/** An app with fastify-tenancy and the admin panel, on a fresh central database. */
export async function buildAdminApp (t: TestContext, options: Partial<Omit<TenancyOptions, 'database'>> & { database?: Partial<TenancyDatabaseOptions> } = {}): Promise<TestApp> {
  return await buildApp(t, { identification: ['subdomain', 'domain'], ...options }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  })
}

const PASSWORD = 'correct horse battery staple'
// One hash for every test admin: scrypt at its real cost is slow, and the same password may share a hash (its salt too) in tests.
let passwordHash: Promise<string> | undefined

/** Makes an admin with a role holding exactly `permissions`; returns its email and password. */
export async function makeAdmin (app: FastifyInstance, permissions: Permission[], email = `admin-${uuidv7().slice(-8)}@example.test`): Promise<{ email: string, password: string, id: string }> {
  const password = PASSWORD
  const conn = app.tenancy.orm.em.getConnection()
  const id = uuidv7()
  passwordHash ??= hashPassword(PASSWORD)
  await conn.execute('insert into tenancy.admins (id, email, name, password_hash) values (?, ?, ?, ?)', [id, email, 'Test Admin', await passwordHash], 'run')
  const role = await conn.execute('insert into tenancy.admin_roles (name, permissions) values (?, ?::text[]) returning id', [`role-${id}`, `{${permissions.join(',')}}`], 'all')
  await conn.execute('insert into tenancy.admin_role_assignments (admin_id, role_id) values (?, ?)', [id, role[0]?.id], 'run')
  return { email, password, id }
}

/** A browser-like client for app.inject: keeps cookies, reads CSRF tokens from forms. */
export class AdminClient {
  readonly cookies = new Map<string, string>()
  constructor (readonly app: FastifyInstance) {}

  private cookieHeader (): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep (res: LightMyRequestResponse): void {
    for (const c of res.cookies) {
      if (c.value === '' || (c.expires !== undefined && c.expires.getTime() < Date.now())) this.cookies.delete(c.name)
      else this.cookies.set(c.name, c.value)
    }
  }

  async get (url: string): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({ method: 'GET', url, headers: { host: 'localhost', cookie: this.cookieHeader() } })
    this.keep(res)
    return res
  }

  /** Posts a form; `csrf: true` first loads `from` (or the URL) to take the page's token. */
  async post (url: string, form: Record<string, string | string[]>, options: { csrf?: boolean | string, from?: string } = {}): Promise<LightMyRequestResponse> {
    const body = new URLSearchParams()
    let token: string | undefined
    if (typeof options.csrf === 'string') token = options.csrf
    else if (options.csrf !== false) token = csrfOf((await this.get(options.from ?? url)).body)
    if (token !== undefined) body.append('_csrf', token)
    for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one)
    const res = await this.app.inject({ method: 'POST', url, payload: body.toString(), headers: { host: 'localhost', cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' } })
    this.keep(res)
    return res
  }

  /** Posts a form with a file (multipart), with the CSRF token of the page at `from`. */
  async upload (
    url: string, fields: Record<string, string>, files: Record<string, { filename: string, data: Buffer }>, from: string
  ): Promise<LightMyRequestResponse> {
    const token = csrfOf((await this.get(from)).body) as string
    const { payload, contentType } = await multipartForm({ _csrf: token, ...fields }, files)
    const res = await this.app.inject({ method: 'POST', url, payload, headers: { host: 'localhost', cookie: this.cookieHeader(), 'content-type': contentType } })
    this.keep(res)
    return res
  }

  async signIn (email: string, password: string): Promise<LightMyRequestResponse> {
    return await this.post('/admin/login', { email, password }, { from: '/admin/login' })
  }
}

/** The CSRF token of the first form in a page. */
export function csrfOf (html: string): string | undefined {
  return /name="_csrf" value="([^"]+)"/.exec(html)?.[1]
}

/** A multipart form as a browser sends one with a file (the Import page): the payload and its content type, for app.inject. */
export async function multipartForm (
  fields: Record<string, string>, files: Record<string, { filename: string, data: Buffer }>
): Promise<{ payload: Buffer, contentType: string }> {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  for (const [k, f] of Object.entries(files)) form.append(k, new Blob([new Uint8Array(f.data)]), f.filename)
  const request = new Request('http://localhost/', { method: 'POST', body: form })
  return { payload: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get('content-type') as string }
}
