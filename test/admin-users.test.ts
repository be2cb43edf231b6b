import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { sql, urlFor } from './helpers/database.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'

const SYNC = { sync: { mode: 'inline' as const, resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] } }

test('an operator creates a user, attaches it to two tenants, renames it, detaches and deletes it, and the tenant databases follow', async (t) => {
  const { app, central } = await buildAdminApp(t, SYNC)
  const admin = await makeAdmin(app, ['manage_users'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const [a, b, c] = [await app.tenancy.create({ identifier: 'alpha' }), await app.tenancy.create({ identifier: 'bravo' }), await app.tenancy.create({ identifier: 'charlie' })]
  const copies = async (tenant: typeof a): Promise<Array<Record<string, unknown>>> => await sql(urlFor(app.tenancy.tenants.databaseName(tenant)), 'select global_id, name, email from users')

  const created = await client.post('/admin/users/new', { name: 'Jane Doe', email: 'jane@example.test', password: 'a long secret' }, { from: '/admin/users/new' })
  assert.equal(created.statusCode, 303)
  const page = String(created.headers.location)
  const globalId = page.split('/').pop() as string
  assert.match((await client.get(page)).body, /None yet: the user exists only centrally/)
  const stored = await sql(central.url, 'select password from tenancy.users where global_id = $1', [globalId])
  assert.match(String(stored[0]?.password), /^scrypt\$/, 'the password is stored hashed')

  await client.post(`${page}/attach`, { tenants: [a.key, b.key] }, { from: page })
  assert.deepEqual((await copies(a)).map((r) => [r.global_id, r.name]), [[globalId, 'Jane Doe']])
  assert.deepEqual((await copies(b)).map((r) => [r.global_id, r.name]), [[globalId, 'Jane Doe']])
  assert.deepEqual(await copies(c), [])
  const show = await client.get(page)
  assert.ok(show.body.includes('>alpha<') && show.body.includes('>bravo<'))
  assert.match(show.body, /<input type="checkbox" name="tenants" value="[^"]+"> <span class="wrap">charlie — /, 'the picker offers the tenant it is not in')
  assert.doesNotMatch(show.body, /<span class="wrap">alpha — /, 'and not the ones it is in')

  await client.post(`${page}/edit`, { name: 'Jane Smith', email: 'jane@example.test', password: '' }, { from: `${page}/edit` })
  assert.deepEqual((await copies(a)).map((r) => r.name), ['Jane Smith'])
  assert.deepEqual((await copies(b)).map((r) => r.name), ['Jane Smith'])

  await client.post(`${page}/detach/${a.key}`, {}, { from: page })
  assert.deepEqual(await copies(a), [])
  assert.equal((await copies(b)).length, 1)

  await client.post(`${page}/delete`, {}, { from: `${page}/delete` })
  assert.deepEqual(await copies(b), [])
  assert.deepEqual(await sql(central.url, 'select 1 from tenancy.users'), [])
})

test('bad input in the user forms gets a field message, never a 500, and text is escaped', async (t) => {
  const { app } = await buildAdminApp(t, SYNC)
  const admin = await makeAdmin(app, ['manage_users'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  await client.post('/admin/users/new', { name: 'Taken', email: 'taken@example.test', password: 'a long secret' }, { from: '/admin/users/new' })
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ name: '', email: '', password: '' }, /Name is required[\s\S]*Email is required[\s\S]*Password is required/],
    [{ name: 'x'.repeat(300), email: 'a@b.test', password: 'a long secret' }, /at most 255 characters/],
    [{ name: 'Ok', email: 'not an email', password: 'a long secret' }, /Enter an email address/],
    [{ name: 'Ok', email: 'taken@example.test', password: 'a long secret' }, /Another user has this email/],
    [{ name: 'Ok', email: 'ok@example.test', password: 'short' }, /at least 8 characters/]
  ]
  for (const [form, message] of cases) {
    const res = await client.post('/admin/users/new', form, { from: '/admin/users/new' })
    assert.equal(res.statusCode, 422, JSON.stringify(form))
    assert.match(res.body, message)
  }
  const script = '<script>alert(1)</script>'
  const ok = await client.post('/admin/users/new', { name: script, email: 'x@example.test', password: 'a long secret' }, { from: '/admin/users/new' })
  assert.equal(ok.statusCode, 303)
  for (const body of [(await client.get('/admin/users')).body, (await client.get(String(ok.headers.location))).body]) {
    assert.ok(body.includes('&lt;script&gt;') && !body.includes(script))
  }
  assert.equal((await client.get('/admin/users/%3Cscript%3E')).statusCode, 404)
})

test('without resource syncing the Users area says so instead of failing', async (t) => {
  const { app } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_users'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const res = await client.get('/admin/users')
  assert.equal(res.statusCode, 503)
  assert.match(res.body, /Resource syncing is not configured/)
})
