import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { adminPlugin } from '../server/admin/index.js'
import { hashPassword, verifyPassword } from '../server/admin/auth/password.js'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { AdminClient, COOKIE_SECRET, csrfOf, makeAdmin } from './helpers/admin.js'
import { Browser } from './helpers/browser-jar.js'

const CENTRAL = 'example.test'

/** The admin on https-style cookies (the default), tenants on subdomains of its domain, and a tenant page an attacker controls. */
async function hostileSetup (t: import('node:test').TestContext, cookies: (browser: Browser) => string[]): Promise<{ app: FastifyInstance, central: { url: string } }> {
  const planted: { cookies: string[] } = { cookies: [] }
  const { app, central } = await buildApp(t, { identification: ['subdomain'], centralDomains: [CENTRAL] }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET })
    // A tenant's own page: tenants run their own code; this one plants cookies for the parent domain.
    app.get('/welcome', { config: { tenancy: 'tenant' } }, async (_request, reply) => {
      return await reply.header('set-cookie', planted.cookies).send('hello')
    })
  })
  await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  ;(app as unknown as { plant: (b: Browser) => void }).plant = (b) => { planted.cookies = cookies(b) }
  return { app, central }
}

/** Every cookie the attacker holds, offered to the whole parent domain, under its own name and without the prefix. */
function domainCookiesOf (attacker: Browser): string[] {
  return attacker.jar.cookies.flatMap((c) => [
    `${c.name}=${c.value}; Domain=${CENTRAL}; Path=/; Secure; HttpOnly`,
    `${c.name.replace(/^__Host-/, '')}=${c.value}; Domain=${CENTRAL}; Path=/; Secure; HttpOnly`,
    `${c.name.replace(/^__Host-/, '')}=${c.value}; Domain=${CENTRAL}; Path=/admin; HttpOnly`
  ])
}

async function signIn (browser: Browser, email: string, password: string): Promise<number> {
  const page = await browser.request('GET', CENTRAL, '/admin/login')
  const res = await browser.request('POST', CENTRAL, '/admin/login', { _csrf: String(csrfOf(page.body)), email, password })
  return res.statusCode
}

test('admin cookies are __Host- cookies: Secure, Path=/, no Domain, httpOnly, SameSite=Lax', async (t) => {
  const { app } = await hostileSetup(t, () => [])
  const owner = await makeAdmin(app, ['manage_tenant_groups'])
  const browser = new Browser(app)
  const login = await browser.request('GET', CENTRAL, '/admin/login')
  const res = await browser.request('POST', CENTRAL, '/admin/login', { _csrf: String(csrfOf(login.body)), email: owner.email, password: owner.password })
  assert.equal(res.statusCode, 303)
  const set = [login.headers['set-cookie'], res.headers['set-cookie']].flat().filter((c): c is string => typeof c === 'string')
  assert.deepEqual(set.map((c) => c.split('=')[0]).sort(), ['__Host-ft_admin', '__Host-ft_csrf'])
  for (const cookie of set) {
    assert.match(cookie, /; Secure/)
    assert.match(cookie, /; Path=\/(;|$)/)
    assert.match(cookie, /; HttpOnly/)
    assert.match(cookie, /; SameSite=Lax/)
    assert.doesNotMatch(cookie, /Domain=/i)
  }
})

test('cookies planted by a tenant subdomain for the parent domain cannot pass CSRF on an admin POST', async (t) => {
  const { app, central } = await hostileSetup(t, domainCookiesOf)
  const victimAccount = await makeAdmin(app, ['manage_tenant_groups'])
  const attackerAccount = await makeAdmin(app, ['manage_tenant_groups'])
  // The attacker, an admin with a session of their own, takes a valid token for it.
  const attacker = new Browser(app, '198.51.100.66')
  assert.equal(await signIn(attacker, attackerAccount.email, attackerAccount.password), 303)
  const attackerToken = String(csrfOf((await attacker.request('GET', CENTRAL, '/admin/clusters/new')).body))

  const victim = new Browser(app)
  assert.equal(await signIn(victim, victimAccount.email, victimAccount.password), 303)
  ;(app as unknown as { plant: (b: Browser) => void }).plant(attacker)
  const visit = await victim.request('GET', 'acme.example.test', '/welcome')
  assert.equal(visit.statusCode, 200)
  assert.ok(victim.jar.refused.length > 0, 'the __Host- cookies with Domain= were offered and refused')
  assert.ok(victim.jar.cookies.some((c) => c.domain === CENTRAL && !c.hostOnly), 'the unprefixed ones were planted for the parent domain')

  const forged = await victim.request('POST', CENTRAL, '/admin/clusters/new', { _csrf: attackerToken, name: 'Planted', description: '' })
  assert.equal(forged.statusCode, 403)
  assert.equal((await sql(central.url, "select count(*)::int as n from tenancy.tenant_clusters where name = 'Planted'"))[0]?.n, 0)
  // The victim's own token still works: the refusal above was the attack's, not the page's.
  const own = String(csrfOf((await victim.request('GET', CENTRAL, '/admin/clusters/new')).body))
  assert.equal((await victim.request('POST', CENTRAL, '/admin/clusters/new', { _csrf: own, name: 'Real', description: '' })).statusCode, 303)
})

test('cookies planted by a tenant subdomain cannot sign a visitor into the attacker\'s session or account', async (t) => {
  const { app } = await hostileSetup(t, domainCookiesOf)
  const attackerAccount = await makeAdmin(app, ['manage_tenants'])
  const attacker = new Browser(app, '198.51.100.66')
  assert.equal(await signIn(attacker, attackerAccount.email, attackerAccount.password), 303)
  const loginToken = String(csrfOf((await attacker.request('GET', CENTRAL, '/admin/login?x=1')).body))

  const visitor = new Browser(app)
  ;(app as unknown as { plant: (b: Browser) => void }).plant(attacker)
  await visitor.request('GET', 'acme.example.test', '/welcome')
  // The attacker's session cookie, planted under every name the browser allows, is no session here.
  const home = await visitor.request('GET', CENTRAL, '/admin')
  assert.equal(home.statusCode, 303)
  assert.match(String(home.headers.location), /\/admin\/login/)
  // A login form posted with the attacker's credentials and token (login CSRF) is refused and sets no session.
  const forced = await visitor.request('POST', CENTRAL, '/admin/login', { _csrf: loginToken, email: attackerAccount.email, password: attackerAccount.password })
  assert.equal(forced.statusCode, 403)
  assert.equal(visitor.jar.get('__Host-ft_admin'), undefined)
  assert.equal((await visitor.request('GET', CENTRAL, '/admin')).statusCode, 303)
})

test('a CSRF token is bound to its session: another session\'s secret and token together do not pass', async (t) => {
  const { app } = await hostileSetup(t, () => [])
  const a = await makeAdmin(app, ['manage_tenant_groups'])
  const b = await makeAdmin(app, ['manage_tenant_groups'])
  const alice = new Browser(app)
  const bob = new Browser(app, '198.51.100.66')
  await signIn(alice, a.email, a.password)
  await signIn(bob, b.email, b.password)
  const bobToken = String(csrfOf((await bob.request('GET', CENTRAL, '/admin/clusters/new')).body))
  // Even with Bob's own CSRF secret cookie in Alice's browser, Bob's token fails in Alice's session.
  const secret = alice.jar.cookies.find((c) => c.name === '__Host-ft_csrf')
  assert.ok(secret !== undefined)
  secret.value = String(bob.jar.get('__Host-ft_csrf'))
  const res = await alice.request('POST', CENTRAL, '/admin/clusters/new', { _csrf: bobToken, name: 'Crossed', description: '' })
  assert.equal(res.statusCode, 403)
  assert.equal((await bob.request('POST', CENTRAL, '/admin/clusters/new', { _csrf: bobToken, name: 'Bobs', description: '' })).statusCode, 303)
})

/** A page with its CSRF token and the echoed email masked, to compare answers for two accounts. */
function masked (body: string, email: string): string {
  return body.replaceAll(email, 'EMAIL').replace(/name="_csrf" value="[^"]+"/g, 'name="_csrf" value="TOKEN"')
}

test('100 wrong passwords from one address are throttled with 429; the real admin still signs in from another; unknown and real accounts get identical answers', async (t) => {
  const { app } = await hostileSetup(t, () => [])
  const real = await makeAdmin(app, ['manage_tenants'], 'real-admin@example.test')
  const unknown = 'nobody-here@example.test'
  const answers = async (email: string, address: string): Promise<Array<{ status: number, body: string, retryAfter: boolean }>> => {
    const browser = new Browser(app, address)
    const token = String(csrfOf((await browser.request('GET', CENTRAL, '/admin/login')).body))
    const out = []
    for (let i = 0; i < 100; i++) {
      const res = await browser.request('POST', CENTRAL, '/admin/login', { _csrf: token, email, password: `wrong ${i}` })
      out.push({ status: res.statusCode, body: masked(res.body, email), retryAfter: res.headers['retry-after'] !== undefined })
    }
    return out
  }
  const forReal = await answers(real.email, '203.0.113.10')
  const forUnknown = await answers(unknown, '203.0.113.11')
  const statuses = forReal.map((a) => a.status)
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401], 'the first failures are answered as wrong passwords')
  assert.ok(statuses.slice(5).every((s) => s === 429), `then throttled: ${statuses.join(',')}`)
  assert.deepEqual(forUnknown, forReal, 'the same statuses, pages and headers for an unknown account')

  const elsewhere = new Browser(app, '198.51.100.20')
  assert.equal(await signIn(elsewhere, real.email, real.password), 303, 'the real admin signs in from another address')
  assert.equal((await elsewhere.request('GET', CENTRAL, '/admin')).statusCode, 200)
})

test('a sprayer trying many accounts from one address meets the per-address limit (429) after signInLimit attempts', async (t) => {
  const { app } = await buildApp(t, {}, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false, signInLimit: { max: 8, minutes: 10 } })
  })
  const client = new AdminClient(app)
  const statuses: number[] = []
  for (let i = 0; i < 12; i++) statuses.push((await client.signIn(`spray-${i}@example.test`, 'password')).statusCode)
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 429, 429, 429, 429])
  const limited = await client.signIn('spray-x@example.test', 'password')
  assert.match(limited.body, /Too many sign-in attempts from your address/)
})

test('a session ends after the idle timeout and at its absolute end, and ended sessions are deleted', async (t) => {
  const { app, central } = await buildApp(t, {}, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false, idleMinutes: 30, sessionHours: 12 })
  })
  const admin = await makeAdmin(app, ['manage_tenants'])
  const idle = new AdminClient(app)
  await idle.signIn(admin.email, admin.password)
  const busy = new AdminClient(app)
  await busy.signIn(admin.email, admin.password)
  assert.equal((await idle.get('/admin')).statusCode, 200)
  const sessions = await sql(central.url, 'select id from tenancy.admin_sessions order by created_at')
  assert.equal(sessions.length, 2)
  // 31 minutes without a request for the first; the second was used a minute ago but is past its absolute end.
  await sql(central.url, "update tenancy.admin_sessions set last_seen_at = now() - interval '31 minutes' where id = $1", [sessions[0]?.id])
  await sql(central.url, "update tenancy.admin_sessions set last_seen_at = now() - interval '1 minute', expires_at = now() - interval '1 second' where id = $1", [sessions[1]?.id])
  assert.equal((await idle.get('/admin')).statusCode, 303)
  assert.equal((await busy.get('/admin')).statusCode, 303)
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.admin_sessions'))[0]?.n, 0, 'both rows are gone')

  // Sessions nobody comes back to are deleted at the next sign-in.
  const left = new AdminClient(app)
  await left.signIn(admin.email, admin.password)
  await sql(central.url, "update tenancy.admin_sessions set last_seen_at = now() - interval '2 hours'")
  await new AdminClient(app).signIn(admin.email, admin.password)
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.admin_sessions'))[0]?.n, 1)
  // A session in use stays.
  const active = new AdminClient(app)
  await active.signIn(admin.email, admin.password)
  assert.equal((await active.get('/admin')).statusCode, 200)
})

test('passwords are hashed with scrypt at OWASP cost (N=2^17, r=8, p=1); older hashes still verify and are upgraded at sign-in', async (t) => {
  const hash = await hashPassword('a password')
  assert.match(hash, /^scrypt\$131072\$8\$1\$/)
  assert.equal(await verifyPassword('a password', hash), true)
  assert.equal(await verifyPassword('another', hash), false)

  const { app, central } = await buildApp(t, {}, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  })
  const admin = await makeAdmin(app, ['manage_tenants'])
  // A hash made at the old cost (N=2^14), as stored before this change.
  const old = 'scrypt$16384$8$1$' + await (async () => {
    const { scryptSync, randomBytes } = await import('node:crypto')
    const salt = randomBytes(16)
    return `${salt.toString('base64url')}$${scryptSync(admin.password, salt, 64, { N: 16384, r: 8, p: 1 }).toString('base64url')}`
  })()
  await sql(central.url, 'update tenancy.admins set password_hash = $1 where id = $2', [old, admin.id])
  assert.equal((await new AdminClient(app).signIn(admin.email, admin.password)).statusCode, 303)
  const stored = (await sql(central.url, 'select password_hash from tenancy.admins where id = $1', [admin.id]))[0]?.password_hash
  assert.match(String(stored), /^scrypt\$131072\$8\$1\$/)
})

test('a generated admin password is shown once and stored nowhere but in its hash', async (t) => {
  const { app, central } = await buildApp(t, {}, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  })
  const boss = await makeAdmin(app, ['manage_admins'])
  const client = new AdminClient(app)
  await client.signIn(boss.email, boss.password)
  const created = await client.post('/admin/admins/new', { name: 'New', email: 'new-admin@example.test', password: '' }, { from: '/admin/admins/new' })
  assert.equal(created.statusCode, 303)
  const page = await client.get('/admin/admins')
  assert.equal(page.headers['cache-control'], 'no-store')
  const password = /shown only this once: ([A-Za-z0-9]{20})/.exec(page.body)?.[1]
  assert.ok(password !== undefined)
  // In no table of the central database, as text, and not in the cookie in clear.
  const tables = await sql(central.url, "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'")
  for (const { table_name: table } of tables) {
    const hits: Array<{ n: number }> = await sql(central.url, `select count(*)::int as n from "${table}" x where x::text like $1`, [`%${password}%`])
    assert.equal(hits[0]?.n, 0, `${table} holds the password`)
  }
  assert.ok(![...client.cookies.values()].some((v) => v.includes(password)))
  assert.doesNotMatch((await client.get('/admin/admins')).body, /shown only this once/)
  assert.equal((await new AdminClient(app).signIn('new-admin@example.test', password)).statusCode, 303)
})
