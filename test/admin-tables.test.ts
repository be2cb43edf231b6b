import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { AdminClient, buildAdminApp, csrfOf, makeAdmin } from './helpers/admin.js'
import { sql } from './helpers/database.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'

const SYNC = { sync: { mode: 'inline' as const, resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] } }

/** Tenant rows without databases, straight in the central database: lists, pickers and clusters need nothing more. */
async function tenantRows (url: string, count: number, tag: string, clusterId: string | null = null): Promise<string[]> {
  const keys = Array.from({ length: count }, () => uuidv7())
  // One statement: a cluster's first tenant becomes its Parent Tenant in the same transaction, as the database's rule wants.
  await sql(url, `with inserted as (
      insert into tenancy.tenants (key, identifier, name, status, tenant_cluster_id)
      select k, $2 || '-' || lpad(i::text, 4, '0'), 'Tenant ' || $2 || ' ' || i, 'active', $3::uuid from unnest($1::uuid[]) with ordinality as t(k, i)
      returning key, identifier
    )
    update tenancy.tenant_clusters set parent_tenant_id = coalesce(parent_tenant_id, (select key from inserted order by identifier limit 1)) where id = $3::uuid`, [keys, tag, clusterId])
  return keys
}

/** A JSON request as admin.js makes it. */
async function asScript (app: FastifyInstance, client: AdminClient, method: 'GET' | 'POST', url: string, form: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  const payload = new URLSearchParams({ _csrf: method === 'POST' ? String(csrfOf((await client.get('/admin/account')).body)) : '', ...form }).toString()
  const res = await app.inject({ method, url, ...(method === 'POST' ? { payload } : {}), headers: { host: 'localhost', accept: 'application/json', cookie, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) } })
  return { status: res.statusCode, body: res.json() }
}

test('a cluster with 500 tenants: its Tenants tab is paged and searchable, and Attach Existing finds a tenant by search, with and without JavaScript', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const made = await client.post('/admin/clusters/new', { name: 'Big Region', description: '' }, { from: '/admin/clusters/new' })
  const url = String(made.headers.location)
  const clusterId = url.split('/').pop() as string
  const members = await tenantRows(central.url, 500, 'member', clusterId)
  await tenantRows(central.url, 40, 'outsider')
  await tenantRows(central.url, 1, 'needle')

  const page = await client.get(url)
  assert.equal(page.statusCode, 200)
  assert.equal((page.body.match(/name="tenants" value="[^"]+" form="bulk-form"/g) ?? []).length, 25, 'one page of 25 of its 500 tenants')
  assert.match(page.body, /Page 1 of 20 · 500 in all/)
  assert.match(page.body, /Showing 10 of 41 tenants: search to narrow\./, 'the picker offers a few of the 41 others, not all')
  const searched = await client.get(`${url}?q=member-0420`)
  assert.equal((searched.body.match(/name="tenants" value="[^"]+" form="bulk-form"/g) ?? []).length, 1, 'one row')
  assert.match(searched.body, />member-0420</)

  // Without JavaScript: the picker is a search form; the term stays in the URL with the list's own search.
  const found = await client.get(`${url}?q=member-04&find=needle`)
  assert.match(found.body, /1 tenant matches &quot;needle&quot;\./)
  const needleKey = /name="tenants" value="([^"]+)"> <span class="wrap">needle-0001 — /.exec(found.body)?.[1]
  assert.ok(needleKey !== undefined)
  assert.match(found.body, /<input type="hidden" name="q" value="member-04">/)
  // With JavaScript: the same candidates as JSON, as the admin types.
  const typed = await asScript(app, client, 'GET', `${url}/candidates?find=need`)
  assert.equal(typed.status, 200)
  assert.deepEqual(typed.body.options.map((o: { label: string }) => o.label), ['needle-0001 — Tenant needle 1'])
  assert.equal(typed.body.total, 1)

  const attached = await asScript(app, client, 'POST', `${url}/attach`, { tenants: needleKey })
  assert.equal(attached.status, 200)
  assert.equal(attached.body.ok, true)
  assert.match(attached.body.notice.text, /Attached needle-0001 to "Big Region"/)
  assert.equal(attached.body.location, url)
  assert.equal((await sql(central.url, 'select tenant_cluster_id from tenancy.tenants where key = $1', [needleKey]))[0]?.tenant_cluster_id, clusterId)
  assert.match((await client.get(`${url}?q=needle`)).body, /1 in all/)
  // A refusal comes back as a notice too.
  const refused = await asScript(app, client, 'POST', `${url}/detach/${members[0] as string}`)
  assert.equal(refused.body.ok, false)
  assert.match(refused.body.notice.text, /is the Parent Tenant of "Big Region" and other tenants remain/)
})

test('tables: the selection column comes first, the bulk bar is a form of its own, related names are links, and a bulk detach asks then acts', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_tenant_groups'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const made = await client.post('/admin/clusters/new', { name: 'West', description: '' }, { from: '/admin/clusters/new' })
  const url = String(made.headers.location)
  const clusterId = url.split('/').pop() as string
  const [a, b, c] = await tenantRows(central.url, 3, 'west', clusterId) as [string, string, string]
  await tenantRows(central.url, 1, 'x'.repeat(55))

  const list = await client.get('/admin/tenants')
  for (const row of list.body.split('<tbody>')[1]?.split('<tr>').slice(1) ?? []) {
    assert.match(row, /^\s*<td class="select-col"><input type="checkbox" name="tenants"/, 'every row starts with its checkbox')
  }
  assert.match(list.body, /<form method="post" action="\/admin\/tenants\/bulk" id="bulk-form" class="bulk-bar" data-bulk-bar/)
  assert.match(list.body, new RegExp(`<a href="/admin/clusters/${clusterId}" class="wrap">West</a>`), 'the cluster column links to it')
  assert.match(list.body, /<a href="[^"]+" class="wrap">x{55}-0001<\/a>/, 'a long name is marked to wrap')
  const clusters = await client.get('/admin/clusters')
  assert.match(clusters.body, new RegExp(`<a href="/admin/tenants/${a}" class="wrap">west-0001</a>`), 'the Parent Tenant links to the tenant')
  const show = await client.get(url)
  assert.match(show.body, new RegExp(`<a href="/admin/tenants/${b}" class="wrap">west-0002</a>`), 'members link to their tenant pages')

  const asked = await client.post(`${url}/detach`, { tenants: [a, b] }, { from: url })
  assert.equal(asked.statusCode, 200)
  assert.match(asked.body, /Detach 2 tenant\(s\) from &quot;West&quot;\?/)
  assert.match(asked.body, /west-0001 is the Parent Tenant: it can leave only with every other tenant\./)
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.tenants where tenant_cluster_id = $1', [clusterId]))[0]?.n, 3, 'asking changed nothing')
  const done = await client.post(`${url}/detach`, { tenants: `${a} ${b}`, confirmed: 'yes' }, { from: url })
  assert.equal(done.statusCode, 303)
  const flash = (await client.get(url)).body
  assert.match(flash, /Detached from &quot;West&quot;: west-0002\. Not detached: west-0001/)
  assert.deepEqual((await sql(central.url, 'select key from tenancy.tenants where tenant_cluster_id = $1 order by identifier', [clusterId])).map((r) => r.key), [a, c])
})

test('relation tabs are paged and searchable: a tenant\'s users and domains, a user\'s tenants; users are attached from the tenant by search', async (t) => {
  const { app, central } = await buildAdminApp(t, SYNC)
  const admin = await makeAdmin(app, ['manage_tenants', 'manage_users'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['one.acme.test', 'two.acme.test', 'three.acme.test'] })
  // 30 users in acme (rows in the pivot; the copies do not matter to the lists), and one outside it.
  await sql(central.url, "insert into tenancy.users (global_id, name, email, password) select 'u' || i, 'User ' || lpad(i::text, 2, '0'), 'u' || i || '@example.test', 'x' from generate_series(1, 31) i")
  await sql(central.url, "insert into tenancy.tenant_users (tenant_key, global_user_id) select $1, 'u' || i from generate_series(1, 30) i", [acme.key])
  await tenantRows(central.url, 30, 'other')
  await sql(central.url, "insert into tenancy.tenant_users (tenant_key, global_user_id) select key, 'u1' from tenancy.tenants where identifier like 'other-%'")

  const users = await client.get(`/admin/tenants/${acme.key}?tab=users`)
  assert.match(users.body, /Users <span class="tab-count">30<\/span>/)
  assert.match(users.body, /Page 1 of 2 · 30 in all/)
  assert.match((await client.get(`/admin/tenants/${acme.key}?tab=users&q=user 07`)).body, /1 in all/)
  assert.match(users.body, /1 user to choose from\./, 'the picker offers the one user not in acme')
  const picked = await asScript(app, client, 'GET', `/admin/tenants/${acme.key}/user-candidates?find=user 31`)
  assert.deepEqual(picked.body.options.map((o: { value: string }) => o.value), ['u31'])
  const attached = await asScript(app, client, 'POST', `/admin/tenants/${acme.key}/users`, { users: 'u31' })
  assert.equal(attached.body.ok, true, JSON.stringify(attached.body))
  assert.match((await client.get(`/admin/tenants/${acme.key}?tab=users`)).body, /31 in all/)

  const domains = await client.get(`/admin/tenants/${acme.key}?tab=domains&q=two`)
  assert.match(domains.body, /two\.acme\.test/)
  assert.doesNotMatch(domains.body, /three\.acme\.test/)

  const user = await client.get('/admin/users/u1')
  assert.match(user.body, /Tenants where this user exists <span class="tab-count">31<\/span>/)
  assert.match(user.body, /Page 1 of 2 · 31 in all/)
  assert.match((await client.get('/admin/users/u1?q=other-0029')).body, /1 in all/)
  assert.match(user.body, /No active tenants left to attach\./)
  const u31 = await client.get('/admin/users/u31?find=oth')
  assert.match(u31.body, /Showing 10 of 30 active tenants matching &quot;oth&quot;: search to narrow\./)
})

test('the fleet page reads each tenant\'s recorded migration state without opening tenant databases, and "Check these tenants" reads them', async (t) => {
  const { app, central } = await buildAdminApp(t)
  const admin = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  await tenantRows(central.url, 1, 'ghost')
  // Provisioning recorded acme's and globex's states: up to date.
  const states = await app.tenancy.migrationStates([acme.key, globex.key])
  assert.equal(states.get(acme.key)?.pending.length, 0)
  assert.ok((states.get(acme.key)?.executed.length ?? 0) > 0)

  // A tenant database whose migration was rolled back behind the admin's back: the page shows what was recorded...
  await app.tenancy.rollback({ tenants: ['globex'] })
  const afterRollback = (await app.tenancy.migrationStates([globex.key])).get(globex.key)
  assert.equal(afterRollback?.pending.length, 1, 'a rollback is recorded')
  const connectionsBefore = app.tenancy.stats()
  const page = await client.get('/admin/fleet')
  assert.equal(page.statusCode, 200)
  assert.equal(app.tenancy.stats().opened, connectionsBefore.opened, 'no tenant pool was opened')
  assert.match(page.body, /acme<\/a><\/td>\s*<td><span class="badge badge-up-to-date">up to date/)
  assert.match(page.body, /globex<\/a><\/td>\s*<td><span class="badge badge-pending">pending/)
  assert.match(page.body, /ghost-0001<\/a><\/td>\s*<td><span class="badge badge-unknown">not checked/)

  // "Check these tenants" reads the databases of the page's tenants (the ghost has none) and records what it finds.
  const checked = await client.post('/admin/fleet/check', { page: '1' }, { from: '/admin/fleet' })
  assert.equal(checked.statusCode, 303)
  assert.match((await client.get('/admin/fleet')).body, /Checked 3 tenant database\(s\); 1 could not be read\./)
  const ghost = (await sql(central.url, "select s.error from tenancy.tenant_migration_states s join tenancy.tenants t on t.key = s.tenant_key where t.identifier = 'ghost-0001'"))[0]
  assert.match(String(ghost?.error), /does not exist/)

  // A check that began before a migrate finished never overwrites what the migrate recorded.
  const stale = Date.now() - 60_000
  await app.tenancy.migrate({ tenants: ['globex'] })
  await sql(central.url, 'select 1')
  const before = (await app.tenancy.migrationStates([globex.key])).get(globex.key)
  assert.equal(before?.pending.length, 0)
  const { MigrationStates } = await import('../server/lifecycle/migration-states.js')
  const { centralTables } = await import('../server/database/central-schema.js')
  const recorder = new MigrationStates(async (text, params) => await app.tenancy.orm.em.getConnection().execute(text, params as any[], 'all'), centralTables(app.tenancy.orm), async () => [])
  await recorder.record(globex.key, { executed: [] }, stale)
  assert.equal((await app.tenancy.migrationStates([globex.key])).get(globex.key)?.pending.length, 0, 'the older reading lost')
})
