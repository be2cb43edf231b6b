import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type RouteOptions } from 'fastify'
import { CentralUserEntity, tenancyPlugin } from '../server/index.js'
import { TenantUserCopyEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'
import { adminPlugin } from '../server/admin/index.js'
import { PERMISSIONS, type Permission } from '../server/entities/central/admin.entity.js'
import { freshCentral } from './helpers/database.js'
import { AdminClient, COOKIE_SECRET, makeAdmin } from './helpers/admin.js'

const SAMPLE_UUID = '01a20000-0000-7000-8000-000000000000'

/** The app with every admin route, and the list of those routes as the router registered them. */
async function appWithRoutes (t: import('node:test').TestContext): Promise<{ app: import('fastify').FastifyInstance, routes: Array<{ method: string, url: string, admin: string }> }> {
  const central = await freshCentral(t)
  const app = Fastify({ logger: false })
  const routes: Array<{ method: string, url: string, admin: string }> = []
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.url.startsWith('/admin') || route.url.startsWith('/admin/assets')) return
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue
      routes.push({ method, url: route.url, admin: String((route.config as { admin?: string } | undefined)?.admin) })
    }
  })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url: central.url, prefix: central.prefix },
    sync: { mode: 'inline', resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
  })
  await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  await app.ready()
  t.after(async () => { await app.close() })
  return { app, routes }
}

/** A concrete URL for a route pattern. */
function concrete (url: string): string {
  return url.replace(/:[A-Za-z]+/g, SAMPLE_UUID).replace(/\*$/, 'x')
}

test('every admin route sends a visitor without a session to the sign-in page, or answers 401', async (t) => {
  const { app, routes } = await appWithRoutes(t)
  assert.ok(routes.length >= 4, 'the admin registers its routes')
  for (const route of routes) {
    const res = await app.inject({ method: route.method as 'GET', url: concrete(route.url), headers: { host: 'localhost' }, payload: route.method === 'GET' ? undefined : {} })
    if (route.admin === 'public') {
      assert.ok(res.statusCode < 500, `${route.method} ${route.url} answers ${res.statusCode}`)
      continue
    }
    if (route.method === 'GET') {
      assert.equal(res.statusCode, 303, `${route.method} ${route.url}`)
      assert.match(String(res.headers.location), /^\/admin\/login\?next=/)
    } else {
      assert.equal(res.statusCode, 401, `${route.method} ${route.url}`)
    }
  }
})

test('every state-changing admin route refuses a missing or wrong CSRF token', async (t) => {
  const { app, routes } = await appWithRoutes(t)
  const owner = await makeAdmin(app, [...PERMISSIONS])
  const client = new AdminClient(app)
  assert.equal((await client.signIn(owner.email, owner.password)).statusCode, 303)
  const changing = routes.filter((r) => r.method !== 'GET')
  assert.ok(changing.length >= 2)
  for (const route of changing) {
    for (const csrf of [false, 'not-the-token'] as const) {
      const res = await client.post(concrete(route.url), { name: 'x' }, { csrf })
      assert.equal(res.statusCode, 403, `${route.method} ${route.url} with ${csrf === false ? 'no' : 'a wrong'} token`)
      assert.match(res.body, /form has expired|did not come from this site/)
    }
  }
  // Still signed in: the refused posts changed nothing.
  assert.equal((await client.get('/admin')).statusCode, 200)
})

test('each permission grants exactly its own area, in the navigation and by URL', async (t) => {
  const { app, routes } = await appWithRoutes(t)
  const areaOf: Record<string, Permission> = { '/admin/tenants': 'manage_tenants', '/admin/clusters': 'manage_tenant_groups', '/admin/users': 'manage_users', '/admin/admins': 'manage_admins' }
  const areas = Object.keys(areaOf).filter((url) => routes.some((r) => r.method === 'GET' && r.url === url))
  assert.ok(areas.length >= 1)
  for (const permission of PERMISSIONS) {
    const admin = await makeAdmin(app, [permission])
    const client = new AdminClient(app)
    await client.signIn(admin.email, admin.password)
    const home = await client.get('/admin')
    assert.equal(home.statusCode, 200)
    for (const area of areas) {
      const allowed = areaOf[area] === permission
      const res = await client.get(area)
      assert.equal(res.statusCode, allowed ? 200 : 403, `${permission} on ${area}`)
      assert.equal(home.body.includes(`href="${area}"`), allowed, `${permission} sees the link to ${area}`)
    }
    // Every route of another area is refused too, not only its list page.
    for (const route of routes.filter((r) => r.method === 'GET' && PERMISSIONS.includes(r.admin as Permission) && r.admin !== permission)) {
      assert.equal((await client.get(concrete(route.url))).statusCode, 403, `${permission} on ${route.url}`)
    }
  }
})

test('the admin pages carry a Content-Security-Policy and no inline script', async (t) => {
  const { app } = await appWithRoutes(t)
  const owner = await makeAdmin(app, [...PERMISSIONS])
  const client = new AdminClient(app)
  await client.signIn(owner.email, owner.password)
  const res = await client.get('/admin')
  assert.match(String(res.headers['content-security-policy']), /default-src 'self'/)
  assert.match(String(res.headers['content-security-policy']), /script-src 'self'/)
  assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  assert.doesNotMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/)
  assert.doesNotMatch(res.body, /\son[a-z]+="/)
})

test('signing in sets an httpOnly, SameSite, signed session cookie with a new id each time, and too many failures lock the account', async (t) => {
  const { app } = await appWithRoutes(t)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const first = new AdminClient(app)
  const res = await first.signIn(admin.email, admin.password)
  const cookie = res.cookies.find((c) => c.name === 'ft_admin')
  assert.ok(cookie !== undefined)
  assert.equal(cookie.httpOnly, true)
  assert.equal(cookie.sameSite, 'Lax')
  assert.match(cookie.value, /\./, 'signed')
  const second = new AdminClient(app)
  await second.signIn(admin.email, admin.password)
  assert.notEqual(second.cookies.get('ft_admin'), first.cookies.get('ft_admin'))
  // A tampered cookie is no session.
  const forged = new AdminClient(app)
  forged.cookies.set('ft_admin', String(first.cookies.get('ft_admin')).replace(/.$/, (c) => c === 'A' ? 'B' : 'A'))
  assert.equal((await forged.get('/admin')).statusCode, 303)

  const attacker = new AdminClient(app)
  for (let i = 0; i < 5; i++) assert.equal((await attacker.signIn(admin.email, 'wrong password')).statusCode, 401)
  const locked = await attacker.signIn(admin.email, admin.password)
  assert.equal(locked.statusCode, 429)
  assert.match(locked.body, /locked/)
})
