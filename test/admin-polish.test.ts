import { test } from 'node:test'
import assert from 'node:assert/strict'
import view from '@fastify/view'
import { Eta } from 'eta'
import { AdminClient, buildAdminApp, COOKIE_SECRET, makeAdmin } from './helpers/admin.js'
import { adminPlugin } from '../server/admin/index.js'
import { buildApp } from './helpers/app.js'
import { tenantErrorPages } from '../server/demo/tenant-error-pages.js'
import { PERMISSIONS } from '../server/entities/central/admin.entity.js'

test('a domain removed in the admin under a central domain redirects to the tenant, as the tenant page says, until it expires', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['localhost', 'example.test'] }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
    app.get('/projects', { config: { tenancy: 'tenant' } }, async (request) => ({ tenant: request.tenant?.identifier }))
  })
  const admin = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['shop.example.test', 'acme.org.test'] })
  assert.equal((await app.inject({ url: '/projects', headers: { host: 'shop.example.test' } })).json().tenant, 'acme', 'the domain serves acme before')
  const shop = (await app.tenancy.domains.list(acme)).find((d) => d.domain === 'shop.example.test')
  const page = `/admin/tenants/${acme.key}`
  const confirm = await client.get(`${page}/domains/${String(shop?.id)}/delete`)
  assert.match(confirm.body, /for the next 90 day\(s\) they are redirected \(301\) to acme&#39;s primary domain/)
  await client.post(`${page}/domains/${String(shop?.id)}/delete`, {}, { from: `${page}/domains/${String(shop?.id)}/delete` })
  assert.match((await client.get(page)).body, /<code>shop\.example\.test<\/code><\/td><td>domain<\/td><td>[\d-]+ [\d:]+ UTC<\/td>/, 'the page says it redirects until a date')
  const res = await app.inject({ url: '/projects?x=1', headers: { host: 'shop.example.test' } })
  assert.equal(res.statusCode, 301, 'and it does')
  assert.equal(res.headers.location, 'http://acme.org.test/projects?x=1')
  const nobody = await app.inject({ url: '/projects', headers: { host: 'never-was.example.test' } })
  assert.equal(nobody.statusCode, 404)
})

test('a browser visiting a suspended, unready or unknown tenant gets an HTML page with the status; an API client still gets JSON', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.test'] }, async (app) => {
    // The demo's own views (server/demo/views), as the demo registers them.
    await app.register(view, { engine: { eta: new Eta() }, root: 'server/demo/views' })
    tenantErrorPages(app)
    app.get('/', { config: { tenancy: 'tenant' } }, async () => 'home')
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await app.tenancy.suspend(acme)
  const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  const cases: Array<[string, number, RegExp]> = [['acme.example.test', 403, /This site is suspended/], ['nobody.example.test', 404, /There is no site here/]]
  for (const [host, status, words] of cases) {
    const page = await app.inject({ url: '/', headers: { host, accept: browser } })
    assert.equal(page.statusCode, status, host)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    assert.match(page.body, words)
    assert.match(page.body, /<html lang="en">/)
    const api = await app.inject({ url: '/', headers: { host, accept: 'application/json' } })
    assert.equal(api.statusCode, status)
    assert.match(api.json().code, /^FST_TENANCY_(TENANT_SUSPENDED|UNKNOWN_TENANT)$/)
  }
})

test('one name for clusters, a favicon on every page, and the audit log shows a change as field, before and after', async (t) => {
  const { app } = await buildAdminApp(t)
  const owner = await makeAdmin(app, [...PERMISSIONS])
  const client = new AdminClient(app)
  await client.signIn(owner.email, owner.password)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  await client.post(`/admin/tenants/${acme.key}/edit`, { identifier: 'acme', name: 'Acme Corp' }, { from: `/admin/tenants/${acme.key}/edit` })
  const created = await client.post('/admin/clusters/new', { name: 'North', description: '' }, { from: '/admin/clusters/new' })
  const pages = ['/admin', '/admin/tenants', `/admin/tenants/${acme.key}`, `/admin/tenants/${acme.key}/edit`, '/admin/clusters', String(created.headers.location), '/admin/clusters/new', '/admin/audit', '/admin/fleet', '/admin/account']
  for (const url of pages) {
    const body = (await client.get(url)).body
    assert.match(body, /<link rel="icon" href="\/admin\/assets\/favicon\.svg" type="image\/svg\+xml">/, url)
    assert.doesNotMatch(body, /Tenant Groups|>Cluster<|\bcluster\b(?![-_."=/])/, `${url} names clusters one way: "Tenant Cluster"`)
  }
  const icon = await client.get('/admin/assets/favicon.svg')
  assert.equal(icon.statusCode, 200)
  assert.match(String(icon.headers['content-type']), /^image\/svg\+xml/)
  // The roles page says what the manage_tenant_groups permission covers, in the same words.
  assert.match((await client.get('/admin/admins/roles')).body, /manage_tenant_groups/)

  const audit = (await client.get('/admin/audit')).body
  assert.match(audit, /<dt>name<\/dt>\s*<dd><del><span class="visually-hidden">was <\/span>Acme<\/del> <span aria-hidden="true">→<\/span> <ins><span class="visually-hidden">now <\/span>Acme Corp<\/ins><\/dd>/)
  assert.doesNotMatch(audit, /\{&quot;name&quot;/, 'no raw JSON')
})
