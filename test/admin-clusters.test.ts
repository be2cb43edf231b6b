import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'

async function signedIn (t: import('node:test').TestContext): Promise<{ client: AdminClient, app: import('fastify').FastifyInstance, url: string }> {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  return { client, app, url: central.url }
}

test('an operator creates a tenant cluster, attaches tenants, switches the parent, and sees the rule refuse a detach', async (t) => {
  const { client, app, url } = await signedIn(t)
  const a = await app.tenancy.create({ identifier: 'alpha', name: 'Alpha Inc' })
  const b = await app.tenancy.create({ identifier: 'bravo', name: 'Bravo Ltd' })

  const created = await client.post('/admin/clusters/new', { name: 'North America', description: 'US and Canada' }, { from: '/admin/clusters/new' })
  assert.equal(created.statusCode, 303)
  const clusterUrl = String(created.headers.location)
  const page = await client.get(clusterUrl)
  assert.match(page.body, /Tenant Cluster &quot;North America&quot; created, with the slug &quot;north-america&quot;/)
  assert.match(page.body, /Attach Existing/)

  const attach = await client.post(`${clusterUrl}/attach`, { tenants: [a.key, b.key] }, { from: clusterUrl })
  assert.equal(attach.statusCode, 303)
  const after = await client.get(clusterUrl)
  assert.match(after.body, /Attached alpha, bravo to &quot;North America&quot;. alpha is its Parent Tenant./)
  assert.match(after.body, /aria-checked="true" aria-disabled="true" aria-label="Parent Tenant: alpha"/)
  assert.match(after.body, /aria-checked="false" aria-label="Parent Tenant: bravo"/)

  const refused = await client.post(`${clusterUrl}/detach/${a.key}`, {}, { from: clusterUrl })
  assert.equal(refused.statusCode, 303)
  assert.match((await client.get(clusterUrl)).body, /role="alert">&quot;alpha&quot; is the Parent Tenant of &quot;North America&quot; and other tenants remain: make another tenant the Parent Tenant first./)

  await client.post(`${clusterUrl}/parent/${b.key}`, {}, { from: clusterUrl })
  assert.match((await client.get(clusterUrl)).body, /bravo is now the Parent Tenant of &quot;North America&quot;/)
  await client.post(`${clusterUrl}/detach/${a.key}`, {}, { from: clusterUrl })
  const clusterId = clusterUrl.split('/').pop()
  assert.deepEqual(await sql(url, 'select parent_tenant_id from tenancy.tenant_clusters where id = $1', [clusterId]), [{ parent_tenant_id: b.key }])

  const list = await client.get('/admin/clusters')
  assert.match(list.body, new RegExp(`North America</a></td>\\s*<td><code class="wrap">north-america</code></td>\\s*<td>1</td>\\s*<td><a href="/admin/tenants/${b.key}" class="wrap">bravo</a></td>`))

  const deleted = await client.post(`${clusterUrl}/delete`, {}, { from: `${clusterUrl}/delete` })
  assert.equal(deleted.statusCode, 303)
  assert.deepEqual(await sql(url, 'select tenant_cluster_id from tenancy.tenants where key = $1', [b.key]), [{ tenant_cluster_id: null }])
})

test('bad input in the cluster forms gets a field message and keeps what was typed, escaped', async (t) => {
  const { client } = await signedIn(t)
  for (const [name, message] of [['', /Name is required/], ['x'.repeat(300), /at most 255 characters/]] as const) {
    const res = await client.post('/admin/clusters/new', { name, description: '' }, { from: '/admin/clusters/new' })
    assert.equal(res.statusCode, 422)
    assert.match(res.body, message)
  }
  const script = '<script>alert(1)</script>'
  const res = await client.post('/admin/clusters/new', { name: script, description: 'x'.repeat(2001) }, { from: '/admin/clusters/new' })
  assert.equal(res.statusCode, 422)
  assert.match(res.body, /Description must be at most 2000 characters/)
  assert.ok(res.body.includes('value="&lt;script&gt;alert(1)&lt;/script&gt;"'))
  assert.ok(!res.body.includes(script))
  const ok = await client.post('/admin/clusters/new', { name: script }, { from: '/admin/clusters/new' })
  assert.equal(ok.statusCode, 303)
  const list = await client.get('/admin/clusters')
  assert.ok(list.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;') && !list.body.includes(script))
  assert.equal((await client.get('/admin/clusters/not-a-uuid')).statusCode, 404)
  assert.equal((await client.get('/admin/clusters/01a20000-0000-7000-8000-000000000000')).statusCode, 404)
})

test('without manage_tenant_groups there is no Tenant Clusters link and its pages answer 403', async (t) => {
  const { app } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  assert.doesNotMatch((await client.get('/admin')).body, /Tenant Clusters|Tenant Groups/)
  assert.equal((await client.get('/admin/clusters')).statusCode, 403)
  assert.equal((await client.get('/admin/clusters/new')).statusCode, 403)
})

test('the tenant form moves a tenant between clusters by the same rules, and shows the reason when refused', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const a = await app.tenancy.create({ identifier: 'alpha', name: 'Alpha' })
  const b = await app.tenancy.create({ identifier: 'bravo', name: 'Bravo' })
  const east = await app.tenancy.clusters.create({ name: 'East' })
  const west = await app.tenancy.clusters.create({ name: 'West' })
  await app.tenancy.clusters.attach(east.id, [a.key, b.key])
  const edit = `/admin/tenants/${a.key}/edit`
  // Issue 13: a refused change shows the form again with the reason on the field, and saves nothing (not even the name).
  const refused = await client.post(edit, { identifier: 'alpha', name: 'Alpha Renamed', cluster: west.id }, { from: edit })
  assert.equal(refused.statusCode, 422)
  assert.match(refused.body, /id="cluster-error" class="field-error">&quot;alpha&quot; is the Parent Tenant of &quot;East&quot;/)
  assert.match(refused.body, /value="Alpha Renamed"/)
  assert.deepEqual(await sql(central.url, 'select name from tenancy.tenants where key = $1', [a.key]), [{ name: 'Alpha' }])
  await client.post(`/admin/tenants/${b.key}/edit`, { identifier: 'bravo', name: 'Bravo', cluster: west.id }, { from: `/admin/tenants/${b.key}/edit` })
  const rows = await sql(central.url, 'select c.name, p.identifier as parent from tenancy.tenant_clusters c left join tenancy.tenants p on p.key = c.parent_tenant_id order by c.name')
  assert.deepEqual(rows, [{ name: 'East', parent: 'alpha' }, { name: 'West', parent: 'bravo' }])
  const created = await client.post('/admin/tenants/new', { identifier: 'charlie', name: 'Charlie', cluster: west.id }, { from: '/admin/tenants/new' })
  assert.equal(created.statusCode, 303)
  assert.deepEqual(await sql(central.url, "select c.name from tenancy.tenants t join tenancy.tenant_clusters c on c.id = t.tenant_cluster_id where t.identifier = 'charlie'"), [{ name: 'West' }])
})
