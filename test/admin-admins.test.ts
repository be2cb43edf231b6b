import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'

test('an admin creates another with a role; it sees only its areas; deactivating it ends its session', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const boss = await makeAdmin(app, ['manage_admins', 'manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(boss.email, boss.password)
  await client.post('/admin/admins/roles', { name: 'tenant ops', permissions: ['manage_tenants'] }, { from: '/admin/admins/roles' })
  const role = (await sql(central.url, "select id from tenancy.admin_roles where name = 'tenant ops'"))[0]?.id
  const created = await client.post('/admin/admins/new', { name: 'Ops', email: 'ops@example.test', password: '', roles: [String(role)] }, { from: '/admin/admins/new' })
  assert.equal(created.statusCode, 303)
  const list = await client.get('/admin/admins')
  const password = /shown only this once: ([A-Za-z0-9]+)/.exec(list.body)?.[1]
  assert.ok(password !== undefined, 'the generated password is shown once')
  assert.doesNotMatch((await client.get('/admin/admins')).body, /shown only this once/)

  const ops = new AdminClient(app)
  assert.equal((await ops.signIn('ops@example.test', password)).statusCode, 303)
  const home = await ops.get('/admin')
  assert.match(home.body, /href="\/admin\/tenants"/)
  assert.doesNotMatch(home.body, /href="\/admin\/admins"/)
  assert.equal((await ops.get('/admin/admins')).statusCode, 403)

  const id = (await sql(central.url, "select id from tenancy.admins where email = 'ops@example.test'"))[0]?.id
  const saved = await client.post(`/admin/admins/${String(id)}/edit`, { name: 'Ops', roles: [String(role)] }, { from: `/admin/admins/${String(id)}/edit` })
  assert.equal(saved.statusCode, 303)
  const after = await ops.get('/admin/tenants')
  assert.equal(after.statusCode, 303, 'a deactivated admin is signed out')
  assert.match(String(after.headers.location), /\/admin\/login/)
})

test('an admin cannot deactivate themselves or remove their own last manage_admins permission', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const me = await makeAdmin(app, ['manage_admins'])
  const client = new AdminClient(app)
  await client.signIn(me.email, me.password)
  const roles = await sql(central.url, 'select id, name from tenancy.admin_roles')
  const owner = roles.find((r) => r.name === 'owner')?.id
  const url = `/admin/admins/${me.id}/edit`
  const off = await client.post(url, { name: 'Me', roles: [String(owner)] }, { from: url })
  assert.equal(off.statusCode, 422)
  assert.match(off.body, /cannot deactivate yourself/)
  const noRoles = await client.post(url, { name: 'Me', active: 'on' }, { from: url })
  assert.equal(noRoles.statusCode, 422)
  assert.match(noRoles.body, /cannot remove your own last manage_admins permission/)
  const ok = await client.post(url, { name: 'Me Again', active: 'on', roles: [String(owner)] }, { from: url })
  assert.equal(ok.statusCode, 303)
})

test('bad input in the admin forms gets field messages and never a 500', async (t) => {
  const { app } = await buildAdminApp(t)
  const me = await makeAdmin(app, ['manage_admins'])
  const client = new AdminClient(app)
  await client.signIn(me.email, me.password)
  for (const [form, message] of [
    [{ name: '', email: '' }, /Name is required[\s\S]*Email is required/],
    [{ name: 'x'.repeat(300), email: 'a@b.test' }, /at most 255/],
    [{ name: 'X', email: me.email }, /Another admin has this email/],
    [{ name: 'X', email: 'y@example.test', password: 'short' }, /at least 12 characters/],
    [{ name: 'X', email: 'z@example.test', roles: '999999' }, /Choose roles from the list/],
    [{ name: '<script>alert(1)</script>', email: 'bad' }, /Enter an email address/]
  ] as const) {
    const res = await client.post('/admin/admins/new', form as Record<string, string>, { from: '/admin/admins/new' })
    assert.equal(res.statusCode, 422, JSON.stringify(form))
    assert.match(res.body, message)
    assert.ok(!res.body.includes('<script>alert(1)</script>'))
  }
  const role = await client.post('/admin/admins/roles', { name: '', permissions: ['root'] }, { from: '/admin/admins/roles' })
  assert.equal(role.statusCode, 422)
  assert.match(role.body, /Role name is required/)
  assert.equal((await client.get('/admin/admins/not-an-id/edit')).statusCode, 404)
})
