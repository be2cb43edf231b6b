import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'
import type { TenancyEventName } from '../server/index.js'

const WATCHED: TenancyEventName[] = ['tenant.updating', 'tenant.updated', 'tenant.suspending', 'tenant.suspended', 'tenant.activating', 'tenant.activated',
  'domain.adding', 'domain.added', 'domain.removing', 'domain.removed', 'domain.primary-changing', 'domain.primary-changed']

async function operator (t: import('node:test').TestContext): Promise<{ client: AdminClient, app: import('fastify').FastifyInstance, url: string, seen: string[] }> {
  const { app, central } = await buildAdminApp(t, { centralDomains: ['localhost', 'landlord-panel.example.com'] })
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const seen: string[] = []
  for (const name of WATCHED) app.tenancy.events.on(name, (e) => { seen.push([e.name, e.tenant.identifier, e.domain].filter(Boolean).join(' ')) })
  return { client, app, url: central.url, seen }
}

test('renaming a tenant in the edit form to a reserved or central name gets a form message and saves nothing', async (t) => {
  const { client, app, url, seen } = await operator(t)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  const edit = `/admin/tenants/${acme.key}/edit`
  for (const identifier of ['admin', 'www', 'api', 'landlord-panel', 'localhost']) {
    const res = await client.post(edit, { identifier, name: 'Renamed', cluster: '' }, { from: edit })
    assert.equal(res.statusCode, 422, identifier)
    assert.match(res.body, new RegExp(`The identifier &quot;${identifier}&quot; is taken`), identifier)
    assert.ok(res.body.includes(`value="${identifier}"`), 'the form keeps what was typed')
  }
  assert.deepEqual(await sql(url, 'select identifier, name from tenancy.tenants'), [{ identifier: 'acme', name: 'Acme' }])
  assert.equal((await app.tenancy.tenants.byIdentifier('acme'))?.name, 'Acme')
  assert.deepEqual(seen, [])
  // The same form with a good identifier saves, through app.tenancy.update.
  const saved = await client.post(edit, { identifier: 'acme-two', name: 'Acme Two', cluster: '' }, { from: edit })
  assert.equal(saved.statusCode, 303)
  assert.deepEqual(seen, ['tenant.updating acme', 'tenant.updated acme-two'])
})

test('a rename with a cluster move the rule refuses saves neither', async (t) => {
  const { client, app, url } = await operator(t)
  const a = await app.tenancy.create({ identifier: 'alpha', name: 'Alpha' })
  const b = await app.tenancy.create({ identifier: 'bravo', name: 'Bravo' })
  const east = await app.tenancy.clusters.create({ name: 'East' })
  const west = await app.tenancy.clusters.create({ name: 'West' })
  await app.tenancy.clusters.attach(east.id, [a.key, b.key])
  const edit = `/admin/tenants/${a.key}/edit`
  // Issue 13: the refused form comes back (422) with the reason on the cluster field, keeping what was typed.
  const refused = await client.post(edit, { identifier: 'alpha-renamed', name: 'Alpha Renamed', cluster: west.id }, { from: edit })
  assert.equal(refused.statusCode, 422)
  assert.match(refused.body, /id="cluster-error" class="field-error">&quot;alpha&quot; is the Parent Tenant of &quot;East&quot;/)
  assert.ok(refused.body.includes('value="alpha-renamed"'))
  assert.deepEqual(await sql(url, 'select t.identifier, t.name, c.name as cluster from tenancy.tenants t join tenancy.tenant_clusters c on c.id = t.tenant_cluster_id where t.key = $1', [a.key]),
    [{ identifier: 'alpha', name: 'Alpha', cluster: 'East' }])
})

test('domains and status changed in the admin go through the core and emit the paired events', async (t) => {
  const { client, app, seen } = await operator(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const page = `/admin/tenants/${acme.key}`
  await client.post(`${page}/domains`, { domain: 'acme.example.org' }, { from: page })
  assert.match((await client.get(page)).body, /Domain acme.example.org added/)
  await client.post(`${page}/domains`, { domain: 'shop.example.org' }, { from: page })
  assert.deepEqual(seen, ['domain.adding acme acme.example.org', 'domain.added acme acme.example.org', 'domain.adding acme shop.example.org', 'domain.added acme shop.example.org'])
  const [first, second] = await app.tenancy.domains.list(acme)
  assert.deepEqual([first?.domain, first?.primary, second?.domain, second?.primary], ['acme.example.org', true, 'shop.example.org', false], 'the first domain is primary')
  seen.length = 0
  await client.post(`${page}/domains/${String(second?.id)}/primary`, {}, { from: page })
  await client.post(`${page}/domains/${String(second?.id)}/delete`, {}, { from: page })
  assert.match((await client.get(page)).body, /Domain shop.example.org removed/)
  assert.deepEqual((await app.tenancy.domains.list(acme)).map((d) => [d.domain, d.primary]), [['acme.example.org', true]], 'the remaining domain became primary again')
  await client.post(`${page}/status`, { status: 'suspended' }, { from: page })
  await client.post(`${page}/status`, { status: 'active' }, { from: page })
  assert.deepEqual(seen, [
    'domain.primary-changing acme shop.example.org', 'domain.primary-changed acme shop.example.org',
    'domain.removing acme shop.example.org', 'domain.removed acme shop.example.org',
    'tenant.suspending acme', 'tenant.suspended acme', 'tenant.activating acme', 'tenant.activated acme'
  ])
  // Another tenant's domain id in the URL is refused, and changes nothing.
  const other = await app.tenancy.create({ identifier: 'other', domains: ['other.example.org'] })
  const [foreign] = await app.tenancy.domains.list(other)
  await client.post(`${page}/domains/${String(foreign?.id)}/delete`, {}, { from: page })
  assert.match((await client.get(page)).body, /That domain is not this tenant&#39;s|That domain is not this tenant's/)
  assert.equal((await app.tenancy.domains.list(other)).length, 1)
})

test('two sessions editing one tenant: a stale form saves only what it changed, and a field changed on both sides is shown, not overwritten', async (t) => {
  const { client: a, app, url } = await operator(t)
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const b = new AdminClient(app)
  await b.signIn(admin.email, admin.password)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  const edit = `/admin/tenants/${acme.key}/edit`
  const opened = (body: string): Record<string, string> => Object.fromEntries([...body.matchAll(/name="(was_\w+)" value="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]))
  const stale = opened((await a.get(edit)).body)
  assert.deepEqual(stale, { was_identifier: 'acme', was_name: 'Acme', was_cluster: '' })
  const fresh = opened((await b.get(edit)).body)
  assert.equal((await b.post(edit, { ...fresh, identifier: 'acme-b', name: 'Acme', cluster: '' }, { from: edit })).statusCode, 303)
  // A changes only the name, on the form it opened before B's rename: B's rename stays.
  const saved = await a.post(edit, { ...stale, identifier: 'acme', name: 'Acme Corp', cluster: '' }, { from: edit })
  assert.equal(saved.statusCode, 303)
  assert.deepEqual(await sql(url, 'select identifier, name from tenancy.tenants'), [{ identifier: 'acme-b', name: 'Acme Corp' }])
  // A renames on the stale form too: refused with what it is now.
  const clash = await a.post(edit, { ...stale, identifier: 'acme-a', name: 'Acme', cluster: '' }, { from: edit })
  assert.equal(clash.statusCode, 409)
  assert.match(clash.body, /Changed by someone else since you opened this form \(now &quot;acme-b&quot;\)/)
  assert.deepEqual(await sql(url, 'select identifier, name from tenancy.tenants'), [{ identifier: 'acme-b', name: 'Acme Corp' }])
})
