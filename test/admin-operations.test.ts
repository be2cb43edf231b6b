import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, COOKIE_SECRET, makeAdmin } from './helpers/admin.js'
import { buildApp } from './helpers/app.js'
import { adminPlugin } from '../server/admin/index.js'

test('the tenant page shows former names after a rename, switches maintenance on and off, and opens the app as a user', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain', 'domain'] }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
    app.get('/', { config: { tenancy: 'tenant' } }, async (request) => ({ tenant: request.tenant?.identifier, user: request.impersonation?.userId ?? null, by: request.impersonation?.admin.email ?? null }))
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const conn = app.tenancy.orm.em.getConnection()
  await conn.execute('insert into tenancy.users (global_id, name, email, password) values (?, ?, ?, ?)', ['user-1', 'Ada Lovelace', 'ada@example.test', 'x'], 'run')
  await conn.execute('insert into tenancy.tenant_users (tenant_key, global_user_id) values (?, ?)', [acme.key, 'user-1'], 'run')
  const { email, password } = await makeAdmin(app, ['manage_tenants', 'impersonate_users'], 'ops@example.test')
  const client = new AdminClient(app)
  await client.signIn(email, password)
  const page = `/admin/tenants/${acme.key}`

  // Rename: the old subdomain redirects and the page lists the former name with its end.
  const saved = await client.post(`${page}/edit`, { identifier: 'initech', name: 'Initech', cluster: '' }, { from: `${page}/edit` })
  assert.equal(saved.statusCode, 303)
  const shown = (await client.get(page)).body
  assert.match(shown, /<td><code>acme<\/code><\/td><td>identifier<\/td><td>\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/td>/)
  const old = await app.inject({ url: '/?page=2', headers: { host: 'acme.localhost:3000' } })
  assert.equal(old.statusCode, 301)
  assert.equal(old.headers.location, 'http://initech.localhost:3000/?page=2')

  // Maintenance on: the tenant answers 503, the flash hands out the bypass link once; then off.
  const on = await client.post(`${page}/maintenance`, { message: 'Upgrading.', minutes: '30', allow: '' }, { from: page })
  assert.equal(on.statusCode, 303)
  const during = (await client.get(page)).body
  assert.match(during, /In maintenance until .* UTC: its pages answer 503 with “Upgrading\.”/)
  const link = /bypass link \(shown once\): (http:\/\/initech\.localhost\/\?tenancy-bypass=[\w-]+)/.exec(during)?.[1]
  assert.ok(link !== undefined, 'the bypass link is shown')
  assert.doesNotMatch((await client.get(page)).body, /tenancy-bypass=/, 'and only once')
  const down = await app.inject({ url: '/', headers: { host: 'initech.localhost', accept: 'application/json' } })
  assert.equal(down.statusCode, 503)
  assert.equal(down.json().message, 'Upgrading.')
  const bypass = await app.inject({ url: new URL(link).pathname + new URL(link).search, headers: { host: 'initech.localhost' } })
  assert.equal(bypass.statusCode, 302)
  const bad = await client.post(`${page}/maintenance`, { message: '', minutes: '-3', allow: '' }, { from: page })
  assert.equal(bad.statusCode, 303, 'a bad form value is a notice, not an error page')
  assert.equal((await client.post(`${page}/maintenance/end`, {}, { from: page })).statusCode, 303)
  assert.equal((await app.inject({ url: '/', headers: { host: 'initech.localhost' } })).statusCode, 200)

  // Impersonation: "Open as" leads through a one-time link to the tenant app as that user.
  const withButton = (await client.get(`${page}?tab=users`)).body
  assert.match(withButton, /Open as Ada Lovelace/)
  const open = await client.post(`${page}/impersonate`, { user: 'user-1' }, { from: page })
  assert.equal(open.statusCode, 200)
  assert.match(open.body, /Open Initech as Ada Lovelace/)
  const to = new URL(String(/href="([^"]+_tenancy\/impersonate[^"]+)"/.exec(open.body)?.[1]).replaceAll('&#38;', '&').replaceAll('&amp;', '&'))
  assert.equal(to.host, 'initech.localhost')
  assert.equal(to.pathname, '/_tenancy/impersonate')
  const landed = await app.inject({ url: to.pathname + to.search, headers: { host: to.host } })
  assert.equal(landed.statusCode, 303)
  const cookie = landed.cookies.find((c) => c.name === 'tenancy_impersonation')?.value
  const seen = await app.inject({ url: '/', headers: { host: 'initech.localhost', cookie: `tenancy_impersonation=${cookie}` } })
  assert.deepEqual(seen.json(), { tenant: 'initech', user: 'user-1', by: 'ops@example.test' })
  assert.equal((await app.inject({ url: to.pathname + to.search, headers: { host: to.host } })).statusCode, 403, 'the link works once')
  assert.equal((await app.inject({ method: 'POST', url: '/_tenancy/impersonate/end', headers: { host: 'initech.localhost', cookie: `tenancy_impersonation=${cookie}` } })).statusCode, 303)
  const audit = await conn.execute('select action, actor_email, change from tenancy.admin_audit_log where tenant_key = ? and (action like ? or action like ?) order by id', [acme.key, 'tenant.impersonation.%', 'tenant.maintenance.%'], 'all')
  assert.deepEqual(audit.map((r) => r.action), ['tenant.maintenance.start', 'tenant.maintenance.end', 'tenant.impersonation.issued', 'tenant.impersonation.started', 'tenant.impersonation.refused', 'tenant.impersonation.ended'])
  assert.ok(audit.every((r) => r.actor_email === 'ops@example.test'), 'each under the admin who acted or made the link')
  const stranger = await client.post(`${page}/impersonate`, { user: 'someone-else' }, { from: page })
  assert.equal(stranger.statusCode, 303)
  assert.match((await client.get(page)).body, /not one of this tenant&#39;s users|not one of this tenant's users/)
})

test('without impersonate_users there is no "Open as" button and the route answers 403', async (t) => {
  const { app } = await buildAdminApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const conn = app.tenancy.orm.em.getConnection()
  await conn.execute('insert into tenancy.users (global_id, name, email, password) values (?, ?, ?, ?)', ['user-1', 'Ada Lovelace', 'ada@example.test', 'x'], 'run')
  await conn.execute('insert into tenancy.tenant_users (tenant_key, global_user_id) values (?, ?)', [acme.key, 'user-1'], 'run')
  const { email, password } = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(email, password)
  const page = `/admin/tenants/${acme.key}`
  const usersTab = (await client.get(`${page}?tab=users`)).body
  assert.match(usersTab, /Ada Lovelace/)
  assert.doesNotMatch(usersTab, /Open as/)
  const refused = await client.post(`${page}/impersonate`, { user: 'user-1' }, { from: page })
  assert.equal(refused.statusCode, 403)
})
