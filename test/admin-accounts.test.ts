import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, csrfOf, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'
import { configFor, run } from './helpers/cli.js'
import { verifyPassword } from '../server/admin/auth/password.js'
import { AdminSessions } from '../server/admin/auth/sessions.js'

const signedIn = async (client: AdminClient): Promise<boolean> => (await client.get('/admin')).statusCode === 200

test('an admin changes their own name and password: the current password is checked, every other browser is signed out, this one stays', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const here = new AdminClient(app)
  const elsewhere = new AdminClient(app)
  await here.signIn(admin.email, admin.password)
  await elsewhere.signIn(admin.email, admin.password)
  assert.ok(await signedIn(here) && await signedIn(elsewhere))

  const page = await here.get('/admin/account')
  assert.equal(page.statusCode, 200)
  assert.match(page.body, /signed in on 2 browsers/)
  const renamed = await here.post('/admin/account', { name: 'Grace Hopper' }, { from: '/admin/account' })
  assert.equal(renamed.statusCode, 303)
  assert.match((await here.get('/admin')).body, /Your account: <\/span>Grace Hopper/)
  assert.equal((await here.post('/admin/account', { name: '' }, { from: '/admin/account' })).statusCode, 422)

  const wrong = await here.post('/admin/account/password', { current: 'not my password', password: 'a brand new password', confirm: 'a brand new password' }, { from: '/admin/account' })
  assert.equal(wrong.statusCode, 422)
  assert.match(wrong.body, /That is not your current password\./)
  const differ = await here.post('/admin/account/password', { current: admin.password, password: 'a brand new password', confirm: 'another new password' }, { from: '/admin/account' })
  assert.equal(differ.statusCode, 422)
  assert.match(differ.body, /The two new passwords differ\./)
  const short = await here.post('/admin/account/password', { current: admin.password, password: 'short', confirm: 'short' }, { from: '/admin/account' })
  assert.match(short.body, /at least 12 characters/)
  assert.ok(await signedIn(elsewhere), 'a refused change ends nothing')

  const changed = await here.post('/admin/account/password', { current: admin.password, password: 'a brand new password', confirm: 'a brand new password' }, { from: '/admin/account' })
  assert.equal(changed.statusCode, 303)
  const after = await here.get('/admin/account')
  assert.equal(after.statusCode, 200, 'this browser stays signed in, with a new session')
  assert.match(after.body, /Your password is changed\. Every other browser signed in as you has been signed out\./)
  assert.equal(await signedIn(elsewhere), false, 'the other browser is signed out')
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.admin_sessions where admin_id = $1', [admin.id]))[0]?.n, 1)
  const old = new AdminClient(app)
  assert.equal((await old.signIn(admin.email, admin.password)).statusCode, 401, 'the old password no longer signs in')
  assert.equal((await old.signIn(admin.email, 'a brand new password')).statusCode, 303)
  const actions = (await sql(central.url, 'select action from tenancy.admin_audit_log where actor_id = $1 order by id', [admin.id])).map((r) => r.action)
  assert.deepEqual(actions, ['admin.rename', 'admin.password.change'])
})

test('an admin with manage_admins resets another admin\'s password: asked first, shown once, their sessions end', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const boss = await makeAdmin(app, ['manage_admins'])
  const locked = await makeAdmin(app, ['manage_tenants'])
  const bossClient = new AdminClient(app)
  const lockedClient = new AdminClient(app)
  await bossClient.signIn(boss.email, boss.password)
  await lockedClient.signIn(locked.email, locked.password)

  const confirm = await bossClient.get(`/admin/admins/${locked.id}/password`)
  assert.equal(confirm.statusCode, 200)
  assert.match(confirm.body, /Reset the password of admin-/)
  assert.match(confirm.body, /is signed out at once/)
  assert.ok(await signedIn(lockedClient), 'asking changes nothing')

  const reset = await bossClient.post(`/admin/admins/${locked.id}/password`, {}, { from: `/admin/admins/${locked.id}/password` })
  assert.equal(reset.statusCode, 303)
  assert.equal(reset.headers['cache-control'], 'no-store')
  const shown = await bossClient.get(String(reset.headers.location))
  const password = /shown only this once: (\S{20}) /.exec(shown.body)?.[1]
  assert.ok(password !== undefined, 'the new password is on the next page')
  assert.doesNotMatch((await bossClient.get(String(reset.headers.location))).body, new RegExp(password), 'and only once')
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.admin_audit_log where change::text like $1', [`%${password}%`]))[0]?.n, 0, 'never in the audit log')
  assert.equal(await signedIn(lockedClient), false, 'their sessions ended')
  const [row] = await sql(central.url, 'select password_hash from tenancy.admins where id = $1', [locked.id])
  assert.ok(await verifyPassword(password, String(row?.password_hash)))
  assert.equal((await new AdminClient(app).signIn(locked.email, locked.password)).statusCode, 401)

  // admin.js asks with Accept: application/json: the password comes back in the answer instead of a cookie.
  const token = csrfOf((await bossClient.get(`/admin/admins/${locked.id}/password`)).body) as string
  const json = await app.inject({ method: 'POST', url: `/admin/admins/${locked.id}/password`, payload: `_csrf=${encodeURIComponent(token)}`, headers: { host: 'localhost', accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', cookie: [...bossClient.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } })
  assert.equal(json.statusCode, 200)
  const result = json.json()
  assert.equal(result.ok, true)
  assert.match(result.once, /shown only this once: \S{20} /)
  assert.equal(result.location, `/admin/admins/${locked.id}/edit`)

  // One's own password is changed on the account page, with the current one.
  const self = await bossClient.post(`/admin/admins/${boss.id}/password`, {}, { from: '/admin' })
  assert.equal(self.headers.location, '/admin/account')
  assert.ok(await signedIn(bossClient))
})

test('a sign-in that checked a password changed meanwhile gets no session', async (t) => {
  const { app } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const sessions = new AdminSessions(app.tenancy.orm, 3600_000, 600_000)
  const [row] = await app.tenancy.orm.em.getConnection().execute('select password_hash from tenancy.admins where id = ?', [admin.id], 'all')
  assert.ok(await sessions.create(admin.id, String(row?.password_hash)) !== null)
  await app.tenancy.orm.em.getConnection().execute("update tenancy.admins set password_hash = 'scrypt$changed' where id = ?", [admin.id], 'run')
  assert.equal(await sessions.create(admin.id, String(row?.password_hash)), null)
})

test('fastify-tenancy admin:reset-password gives a locked-out admin a new password and ends their sessions', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants'], 'ops@example.test')
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const config = await configFor(central)
  const cli = async (args: string[]): ReturnType<typeof run> => await run(['--config', config, ...args], { env: { DATABASE_URL: central.url } })

  const reset = await cli(['admin:reset-password', '--email', 'Ops@Example.test'])
  assert.equal(reset.code, 0, reset.stderr)
  const password = /Password \(shown only this once\): (\S{20})\n$/.exec(reset.stdout)?.[1]
  assert.ok(password !== undefined, reset.stdout)
  assert.match(reset.stdout, /^New password set for ops@example\.test; their sessions have ended\./)
  assert.equal(await signedIn(client), false)
  assert.equal((await new AdminClient(app).signIn(admin.email, password)).statusCode, 303)

  const given = await cli(['admin:reset-password', '--email', 'ops@example.test', '--password', 'chosen by the operator', '--json'])
  assert.equal(given.code, 0, given.stderr)
  assert.deepEqual(JSON.parse(given.stdout), { id: admin.id, email: 'ops@example.test', active: true, sessionsEnded: true })
  assert.equal((await new AdminClient(app).signIn(admin.email, 'chosen by the operator')).statusCode, 303)

  const unknown = await cli(['admin:reset-password', '--email', 'nobody@example.test'])
  assert.equal(unknown.code, 1)
  assert.equal(unknown.stderr, 'FST_TENANCY_ADMIN_NOT_FOUND: There is no admin with the email nobody@example.test; nothing was changed. fastify-tenancy admin:create makes one.\n')
  assert.equal((await cli(['admin:reset-password', '--email', 'ops@example.test', '--password', 'short'])).code, 2)
  assert.equal((await cli(['admin:reset-password', '--email', 'not-an-email'])).code, 2)
})
