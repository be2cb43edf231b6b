import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { serverUrl, sql } from './helpers/database.js'
import type { ProvisioningStep } from '../server/index.js'

async function operator (t: import('node:test').TestContext, options = {}): Promise<{ client: AdminClient, app: import('fastify').FastifyInstance, url: string }> {
  const { app, central } = await buildAdminApp(t, options)
  // Issue 13: clusters show only with manage_tenant_groups; this operator manages both.
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  return { client, app, url: central.url }
}

test('an operator creates a tenant, sees it active with its database, and manages its domains', async (t) => {
  const { client, app } = await operator(t)
  const created = await client.post('/admin/tenants/new', { identifier: 'acme', name: 'Acme Corp', domains: 'acme.test\nshop.acme.test', cluster: '' }, { from: '/admin/tenants/new' })
  assert.equal(created.statusCode, 303)
  const url = String(created.headers.location)
  const page = await client.get(url)
  assert.equal(page.statusCode, 200)
  assert.match(page.body, /Tenant acme created with its own database/)
  assert.match(page.body, /id="tenant-status">active</)
  const acme = await app.tenancy.tenants.find('acme')
  assert.ok(page.body.includes(app.tenancy.tenants.databaseName(acme!)))
  assert.match(page.body, /Migration20261122000001_tenant <small>ran/)

  // Add a domain; it serves the tenant on the next request.
  await client.post(`${url}/domains`, { domain: 'acme.example.org' }, { from: url })
  assert.match((await client.get(url)).body, /Domain acme.example.org added/)
  assert.equal((await app.tenancy.tenants.byDomain?.('acme.example.org'))?.identifier, 'acme')
  for (const [domain, message] of [['ACME.test', /not valid/], ['localhost', /not valid/], ['acme.test', /belongs to another tenant|not valid/], ['<b>x</b>.test', /not valid/]] as const) {
    await client.post(`${url}/domains`, { domain }, { from: url })
    const after = await client.get(url)
    assert.match(after.body, message, domain)
    assert.ok(!after.body.includes('<b>x</b>'), 'escaped')
  }
  const ids = /domains\/(\d+)\/primary/.exec((await client.get(`${url}?tab=domains`)).body)
  assert.ok(ids !== null)
  await client.post(`${url}/domains/${ids[1]}/primary`, {}, { from: url })
  assert.match((await client.get(url)).body, /is now the primary domain/)
  await client.post(`${url}/domains/${ids[1]}/delete`, {}, { from: url })
  assert.match((await client.get(url)).body, /removed/)
})

test('the tenant list searches, filters by status and cluster, sorts and pages', async (t) => {
  const { client, app, url } = await operator(t)
  for (let i = 0; i < 27; i++) await app.tenancy.create({ identifier: `t${String(i).padStart(2, '0')}`, name: i % 2 === 0 ? `Even ${i}` : `Odd ${i}`, domains: i === 5 ? ['special.example.org'] : [] })
  await sql(url, "update tenancy.tenants set status = 'suspended' where identifier = 't03'")
  const cluster = await app.tenancy.clusters.create({ name: 'Group' })
  await app.tenancy.clusters.attach(cluster.id, [(await app.tenancy.tenants.find('t07'))!.key])
  const first = await client.get('/admin/tenants')
  assert.match(first.body, /27 tenants/)
  assert.match(first.body, /Page 1 of 2/)
  assert.equal((first.body.match(/<tr>\s*<td class="select-col"><input type="checkbox" name="tenants"/g) ?? []).length, 25)
  assert.match((await client.get('/admin/tenants?page=2')).body, /Page 2 of 2/)
  // A page past the end shows the last page's tenants, not an empty page.
  const past = await client.get('/admin/tenants?page=9')
  assert.match(past.body, /Page 2 of 2/)
  assert.equal((past.body.match(/<tr>\s*<td class="select-col"><input type="checkbox" name="tenants"/g) ?? []).length, 2)
  assert.match(past.body, />t26</)
  // A search that matches nothing says so, which is not the empty state of a fleet without tenants.
  const none = (await client.get('/admin/tenants?q=nothing-like-this')).body
  assert.match(none, /No tenant matches/)
  assert.doesNotMatch(none, /No tenants yet/)
  assert.match((await client.get('/admin/tenants?q=special')).body, /1 tenant</)
  assert.match((await client.get('/admin/tenants?q=ODD')).body, /13 tenants/)
  assert.match((await client.get('/admin/tenants?status=suspended')).body, />t03</)
  const filtered = await client.get(`/admin/tenants?cluster=${cluster.id}`)
  assert.match(filtered.body, /1 tenant</)
  assert.match(filtered.body, />t07</)
  const desc = await client.get('/admin/tenants?sort=identifier&dir=desc')
  assert.ok(desc.body.indexOf('>t26<') < desc.body.indexOf('>t25<'))
  // Nonsense in the query string falls back to the defaults.
  for (const q of ['sort=password;drop', 'page=-3', 'page=abc', 'status=<script>', 'cluster=1%27', 'q=' + 'x'.repeat(500), 'dir=sideways', 'q=%27%20or%201=1--']) {
    assert.equal((await client.get(`/admin/tenants?${q}`)).statusCode, 200, q)
  }
})

test('bad input in the tenant forms gets field messages with 422, keeps the values and escapes them', async (t) => {
  const { client, app } = await operator(t)
  await app.tenancy.create({ identifier: 'taken', domains: ['taken.test'] })
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ identifier: '', name: '' }, /Identifier is required[\s\S]*Name is required/],
    [{ identifier: 'x'.repeat(300), name: 'ok' }, /Identifier must be at most 63 characters/],
    [{ identifier: 'Bad Name', name: 'ok' }, /lowercase letters, digits and dashes/],
    [{ identifier: 'taken', name: 'ok' }, /is taken/],
    [{ identifier: 'fresh', name: 'ok', domains: 'taken.test' }, /belongs to another tenant/],
    [{ identifier: 'fresh', name: 'ok', domains: 'NOT A DOMAIN' }, /not valid/],
    [{ identifier: 'fresh', name: 'x'.repeat(300) }, /Name must be at most 255 characters/],
    [{ identifier: 'fresh', name: 'ok', cluster: 'nope' }, /Choose a Tenant Cluster from the list/]
  ]
  for (const [form, message] of cases) {
    const res = await client.post('/admin/tenants/new', form, { from: '/admin/tenants/new' })
    assert.equal(res.statusCode, 422, JSON.stringify(form))
    assert.match(res.body, message, JSON.stringify(form))
  }
  const script = '<script>alert(1)</script>'
  const kept = await client.post('/admin/tenants/new', { identifier: 'Bad', name: script }, { from: '/admin/tenants/new' })
  assert.ok(kept.body.includes('value="&lt;script&gt;alert(1)&lt;/script&gt;"') && !kept.body.includes(script))
  const ok = await client.post('/admin/tenants/new', { identifier: 'scripted', name: script }, { from: '/admin/tenants/new' })
  assert.equal(ok.statusCode, 303)
  for (const page of [await client.get('/admin/tenants'), await client.get(String(ok.headers.location))]) {
    assert.ok(page.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;') && !page.body.includes(script))
  }
  assert.equal((await client.get('/admin/tenants/not-a-key')).statusCode, 404)
  assert.equal((await client.get('/admin/tenants/01a20000-0000-7000-8000-000000000000')).statusCode, 404)
})

test('renaming a tenant moves its subdomain, and deleting needs the identifier typed', async (t) => {
  const { client, app, url } = await operator(t)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  const page = `/admin/tenants/${acme.key}`
  const edit = await client.get(`${page}/edit`)
  assert.match(edit.body, /Renaming the identifier changes the tenant&#39;s subdomain and URLs|Renaming the identifier changes the tenant's subdomain and URLs/)
  assert.ok(edit.body.includes(acme.key))
  const saved = await client.post(`${page}/edit`, { identifier: 'acme-corp', name: 'Acme Corp', cluster: '' }, { from: `${page}/edit` })
  assert.equal(saved.statusCode, 303)
  assert.match((await client.get(page)).body, /Its identifier is now acme-corp/)
  assert.equal((await app.tenancy.tenants.byIdentifier('acme-corp'))?.key, acme.key, 'the next lookup sees the new identifier')
  assert.equal(await app.tenancy.tenants.byIdentifier('acme'), null)

  const wrong = await client.post(`${page}/delete`, { confirm: 'acme' }, { from: `${page}/delete` })
  assert.equal(wrong.statusCode, 422)
  assert.match(wrong.body, /Type acme-corp to confirm/)
  const name = app.tenancy.tenants.databaseName(acme)
  const right = await client.post(`${page}/delete`, { confirm: 'acme-corp' }, { from: `${page}/delete` })
  assert.equal(right.statusCode, 303)
  assert.deepEqual(await sql(url, 'select key from tenancy.tenants'), [])
  assert.deepEqual(await sql(serverUrl(), 'select datname from pg_database where datname = $1', [name]), [])
})

test('a failed provisioning shows its reason, and Retry provisioning and Run migrations work', async (t) => {
  let failOnce = true
  const flaky: ProvisioningStep = { name: 'flaky', run: async () => { if (failOnce) { failOnce = false; throw new Error('the flaky step failed') } } }
  const { client, app } = await operator(t, { provisioning: { steps: (d: ProvisioningStep[]) => [...d.slice(0, -1), flaky, ...d.slice(-1)] } })
  const res = await client.post('/admin/tenants/new', { identifier: 'wobbly', name: 'Wobbly' }, { from: '/admin/tenants/new' })
  assert.equal(res.statusCode, 303)
  const page = String(res.headers.location)
  const failed = await client.get(page)
  assert.match(failed.body, /id="tenant-status">failed</)
  assert.match(failed.body, /flaky: the flaky step failed/)
  await client.post(`${page}/provision`, {}, { from: page })
  const active = await client.get(page)
  assert.match(active.body, /provisioned and active/)
  assert.match(active.body, /id="tenant-status">active</)
  const tenant = await app.tenancy.tenants.find('wobbly')
  await app.tenancy.rollback({ tenants: [tenant!.key] })
  assert.match((await client.get(page)).body, /<strong>pending<\/strong>/)
  await client.post(`${page}/migrate`, {}, { from: page })
  assert.match((await client.get(page)).body, /Ran 1 migration/)
})
