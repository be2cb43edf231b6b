import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AdminClient, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { AuditLog } from '../server/admin/audit/audit-log.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'

const SYNC = { sync: { mode: 'inline' as const, resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] } }

test('without manage_tenant_groups no cluster appears on tenant pages and no tenant form or bulk action can change one', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const a = await app.tenancy.create({ identifier: 'alpha', name: 'Alpha' })
  const b = await app.tenancy.create({ identifier: 'bravo', name: 'Bravo' })
  const secret = await app.tenancy.clusters.create({ name: 'Secret Region' })
  await app.tenancy.clusters.attach(secret.id, [a.key])
  const limited = await makeAdmin(app, ['manage_tenants', 'manage_admins'])
  const client = new AdminClient(app)
  await client.signIn(limited.email, limited.password)
  for (const url of ['/admin/tenants', `/admin/tenants?cluster=${secret.id}`, `/admin/tenants/${a.key}`, `/admin/tenants/${a.key}/edit`, '/admin/tenants/new', '/admin', '/admin/audit']) {
    const page = await client.get(url)
    assert.equal(page.statusCode, 200, url)
    assert.doesNotMatch(page.body, /Secret Region|name="cluster"|\/admin\/clusters/, `${url} shows a cluster`)
  }
  // A cluster posted anyway is not taken: the edit saves the name and leaves the cluster alone.
  const edit = `/admin/tenants/${b.key}/edit`
  assert.equal((await client.post(edit, { identifier: 'bravo', name: 'Bravo 2', cluster: secret.id }, { from: edit })).statusCode, 303)
  const created = await client.post('/admin/tenants/new', { identifier: 'charlie', name: 'Charlie', cluster: secret.id }, { from: '/admin/tenants/new' })
  assert.equal(created.statusCode, 303)
  const bulk = await client.post('/admin/tenants/bulk', { action: 'attach', cluster: secret.id, tenants: [b.key], confirmed: 'yes' }, { from: '/admin/tenants' })
  assert.equal(bulk.statusCode, 403)
  assert.deepEqual(await sql(central.url, 'select identifier, name, tenant_cluster_id from tenancy.tenants order by identifier'), [
    { identifier: 'alpha', name: 'Alpha', tenant_cluster_id: secret.id },
    { identifier: 'bravo', name: 'Bravo 2', tenant_cluster_id: null },
    { identifier: 'charlie', name: 'Charlie', tenant_cluster_id: null }
  ])
})

test('two simultaneous creates of one cluster name give one cluster and one form error', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenant_groups'])
  const one = new AdminClient(app)
  const two = new AdminClient(app)
  await one.signIn(admin.email, admin.password)
  await two.signIn(admin.email, admin.password)
  const [x, y] = await Promise.all([
    one.post('/admin/clusters/new', { name: 'Europe', description: '' }, { from: '/admin/clusters/new' }),
    two.post('/admin/clusters/new', { name: 'europe', description: '' }, { from: '/admin/clusters/new' })
  ])
  assert.deepEqual([x.statusCode, y.statusCode].sort(), [303, 409])
  const loser = x.statusCode === 409 ? x : y
  assert.match(loser.body, /id="name-error" class="field-error">A tenant cluster named &quot;[Ee]urope&quot; exists already/)
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.tenant_clusters'))[0]?.n, 1)
  // The core API refuses the same way.
  await assert.rejects(app.tenancy.clusters.create({ name: 'EUROPE' }), { code: 'FST_TENANCY_CLUSTER_NAME_TAKEN' })
})

test('bulk actions ask first, then suspend, activate, migrate and attach the selected tenants', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const a = await app.tenancy.create({ identifier: 'alpha', name: 'Alpha' })
  const b = await app.tenancy.create({ identifier: 'bravo', name: 'Bravo' })
  const east = await app.tenancy.clusters.create({ name: 'East' })
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const asked = await client.post('/admin/tenants/bulk', { action: 'suspend', tenants: [a.key, b.key] }, { from: '/admin/tenants' })
  assert.equal(asked.statusCode, 200)
  assert.match(asked.body, /Suspend 2 tenant\(s\)\?/)
  assert.match(asked.body, /alpha, bravo will answer 403/)
  assert.deepEqual(await sql(central.url, "select count(*)::int as n from tenancy.tenants where status = 'suspended'"), [{ n: 0 }], 'nothing happens before the confirmation')
  const done = await client.post('/admin/tenants/bulk', { action: 'suspend', tenants: `${a.key} ${b.key}`, confirmed: 'yes' }, { from: '/admin/tenants' })
  assert.equal(done.statusCode, 303)
  assert.deepEqual(await sql(central.url, 'select status from tenancy.tenants order by identifier'), [{ status: 'suspended' }, { status: 'suspended' }])
  await client.post('/admin/tenants/bulk', { action: 'activate', tenants: a.key, confirmed: 'yes' }, { from: '/admin/tenants' })
  await client.post('/admin/tenants/bulk', { action: 'migrate', tenants: a.key, confirmed: 'yes' }, { from: '/admin/tenants' })
  assert.match((await client.get('/admin/tenants')).body, /Migrated: alpha\./)
  await client.post('/admin/tenants/bulk', { action: 'attach', cluster: east.id, tenants: `${a.key} ${b.key}`, confirmed: 'yes' }, { from: '/admin/tenants' })
  assert.deepEqual(await sql(central.url, 'select t.identifier, t.status, c.parent_tenant_id = t.key as parent from tenancy.tenants t join tenancy.tenant_clusters c on c.id = t.tenant_cluster_id order by t.identifier'), [
    { identifier: 'alpha', status: 'active', parent: true },
    { identifier: 'bravo', status: 'suspended', parent: false }
  ])
})

test('actions that lose data or change the Parent Tenant ask first, naming what will happen', async (t) => {
  const { app } = await buildAdminApp(t, SYNC)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  const globex = await app.tenancy.create({ identifier: 'globex', name: 'Globex' })
  const cluster = await app.tenancy.clusters.create({ name: 'North' })
  await app.tenancy.clusters.attach(cluster.id, [acme.key, globex.key])
  await app.tenancy.domains.add(acme, 'shop.acme.test')
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups', 'manage_users'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  await client.post('/admin/users/new', { name: 'Ada', email: 'ada@example.test', password: 'analytical' }, { from: '/admin/users/new' })
  const ada = (await app.tenancy.orm.em.getConnection().execute("select global_id from tenancy.users where email = 'ada@example.test'"))[0]?.global_id as string
  await client.post(`/admin/users/${ada}/attach`, { tenants: acme.key }, { from: `/admin/users/${ada}` })
  const domainId = (await app.tenancy.domains.list(acme))[0]?.id
  const pages: Array<[string, RegExp]> = [
    [`/admin/users/${ada}/detach/${acme.key}`, /removes Ada&#39;s copy from acme&#39;s database/],
    [`/admin/clusters/${cluster.id}/parent/${globex.key}`, /globex will manage &quot;North&quot; instead of acme/],
    [`/admin/clusters/${cluster.id}/detach/${globex.key}`, /globex will belong to no Tenant Cluster/],
    [`/admin/tenants/${acme.key}/status`, /Every request to acme will get 403/],
    [`/admin/tenants/${acme.key}/domains/${String(domainId)}/delete`, /Requests to shop\.acme\.test will no longer reach acme/]
  ]
  for (const [url, words] of pages) {
    const page = await client.get(url)
    assert.equal(page.statusCode, 200, url)
    assert.match(page.body, words, url)
    assert.match(page.body, new RegExp(`<form method="post" action="${url.replace(/[.?]/g, '\\$&')}">`), url)
  }
  // Opening the confirmations changed nothing.
  assert.equal((await app.tenancy.clusters.find(cluster.id))?.parentTenantId, acme.key)
  assert.equal((await app.tenancy.tenants.find(acme.key))?.status, 'active')
  // The tenant page shows Ada's copy in acme's own database next to the central row.
  const show = await client.get(`/admin/tenants/${acme.key}?tab=users`)
  assert.match(show.body, /Copies in acme's database<\/h2>\s*<h3>users<\/h3>/)
  assert.match(show.body, new RegExp(`<code>${ada}</code></td><td class="wrap">Ada</td>`))
})

test('every admin action is in the audit log with who, what, which tenant or cluster, and the change; the list filters', async (t) => {
  const { app } = await buildAdminApp(t)
  const boss = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups', 'manage_admins'], 'boss@example.test')
  const client = new AdminClient(app)
  await client.signIn(boss.email, boss.password)
  await client.post('/admin/tenants/new', { identifier: 'acme', name: 'Acme' }, { from: '/admin/tenants/new' })
  const acme = await app.tenancy.tenants.find('acme')
  assert.ok(acme !== null)
  await client.post(`/admin/tenants/${acme.key}/edit`, { identifier: 'acme', name: 'Acme Inc' }, { from: `/admin/tenants/${acme.key}/edit` })
  await client.post(`/admin/tenants/${acme.key}/status`, { status: 'suspended' }, { from: `/admin/tenants/${acme.key}/status` })
  await client.post('/admin/clusters/new', { name: 'West', description: '' }, { from: '/admin/clusters/new' })
  const { entries } = await new AuditLog(app.tenancy.orm).list()
  assert.deepEqual(entries.map((e) => e.action).reverse(), ['tenant.create', 'tenant.update', 'tenant.suspend', 'cluster.create'])
  const update = entries.find((e) => e.action === 'tenant.update')
  assert.equal(update?.actorEmail, 'boss@example.test')
  assert.equal(update?.tenantIdentifier, 'acme')
  assert.deepEqual(update?.change, { name: { from: 'Acme', to: 'Acme Inc' } })
  assert.ok(update !== undefined && Date.now() - update.at.getTime() < 60_000)
  assert.equal(entries.find((e) => e.action === 'cluster.create')?.clusterName, 'West')

  const list = await client.get('/admin/audit')
  assert.match(list.body, /tenant\.suspend/)
  const filtered = await client.get(`/admin/audit?tenant=${acme.key}`)
  assert.doesNotMatch(filtered.body, /<code>cluster\.create<\/code>/)
  assert.match(filtered.body, /tenant\.update/)
  const byAction = await client.get('/admin/audit?action=cluster.')
  assert.match(byAction.body, /<code>cluster\.create<\/code>/)
  assert.doesNotMatch(byAction.body, /<code>tenant\.update<\/code>/)
  assert.match((await client.get('/admin/audit?page=40')).body, /<code>tenant\.suspend<\/code>/)
})

test('the fleet page shows each tenant\'s migration state; Migrate all runs in the background with progress a reload still shows, and failures with their reason', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const good = await app.tenancy.create({ identifier: 'good', name: 'Good' })
  const lost = await app.tenancy.create({ identifier: 'lost', name: 'Lost' })
  // One tenant's database disappears: its migration fails and the page says why.
  await sql(central.url.replace(/\/[^/]+$/, '/postgres'), `drop database "${app.tenancy.tenants.databaseName(lost)}" with (force)`)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const before = await client.get('/admin/fleet')
  assert.equal(before.statusCode, 200)
  assert.match(before.body, />good<\/a><\/td>\s*<td><span class="badge badge-up-to-date">up to date</)
  // The page shows what was last recorded (no tenant database is opened to draw it); a check reads them.
  assert.match(before.body, />lost<\/a><\/td>\s*<td><span class="badge badge-up-to-date">up to date</)
  await client.post('/admin/fleet/check', { page: '1' }, { from: '/admin/fleet' })
  const checked = await client.get('/admin/fleet')
  assert.match(checked.body, /Checked 2 tenant database\(s\); 1 could not be read\./)
  assert.match(checked.body, />lost<\/a><\/td>\s*<td><span class="badge badge-failed">failed<\/span><\/td>\s*<td>The database could not be read: /)
  // A page past the end shows the last page, not an empty list.
  assert.match((await client.get('/admin/fleet?page=7')).body, />good<\/a><\/td>/)

  // Migrate all is a rollout: its page follows it (by itself, without JavaScript) to the outcome.
  const started = await client.post('/admin/fleet/migrate', {}, { from: '/admin/fleet' })
  assert.equal(started.statusCode, 303)
  const rolloutUrl = String(started.headers.location)
  assert.match(rolloutUrl, /^\/admin\/fleet\/rollouts\/\d+$/)
  let page = await client.get(rolloutUrl)
  await until(async () => {
    page = await client.get(rolloutUrl)
    if (page.body.includes('data-status="running"')) assert.match(page.body, /<meta http-equiv="refresh" content="2">/, 'the page follows the rollout by itself')
    return !page.body.includes('data-status="running"')
  }, { what: 'the rollout ends' })
  assert.match(page.body, /data-status="failed"/)
  // good is up to date as recorded: skipped without opening its database; lost is not.
  assert.match(page.body, /0 done, 1 failed, 0 pending, 1 skipped of 2 tenant\(s\)/)
  assert.match(page.body, />lost<\/a> \(rollout\): /)
  const fleet = await client.get('/admin/fleet')
  assert.match(fleet.body, />lost<\/a><\/td>\s*<td><span class="badge badge-failed">failed<\/span><\/td>\s*<td>Migration failed: /)
  assert.ok(good.key.length > 0)
  // While a rollout goes on (here: one another instance is running), a press starts nothing new.
  const other = await app.tenancy.rollouts.start({ startedBy: 'other@example.test' })
  const refused = await client.post('/admin/fleet/migrate', {}, { from: '/admin/fleet' })
  assert.equal(refused.headers.location, `/admin/fleet/rollouts/${other.id}`)
  assert.match((await client.get(`/admin/fleet/rollouts/${other.id}`)).body, new RegExp(`Rollout ${other.id} is going on already`))
  assert.equal((await app.tenancy.rollouts.list()).total, 2)
})
