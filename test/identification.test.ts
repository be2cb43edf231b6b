import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import type { FastifyInstance } from 'fastify'

/** Tenant routes that answer with the tenant and its own rows. */
function routes (app: FastifyInstance): void {
  app.get('/whoami', async (request) => {
    const projects = await request.tenantEm.find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
    return { identifier: request.tenant?.identifier, projects: projects.map((p) => p.title) }
  })
  app.get('/central', { config: { tenancy: 'central' } }, async (request) => ({ central: true, tenant: request.tenant }))
  app.get('/either', { config: { tenancy: 'universal' } }, async (request) => ({ tenant: request.tenant?.identifier ?? null }))
  app.register(async (scoped) => {
    scoped.get('/items/:id', async (request) => ({ identifier: request.tenant?.identifier, params: request.params }))
  }, { prefix: '/t/:tenant' })
}

async function withTenants (app: FastifyInstance): Promise<void> {
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['acme.test', 'shop.acme.test'] })
  const globex = await app.tenancy.create({ identifier: 'globex', name: 'Globex', domains: ['globex.test'] })
  await app.tenancy.run(acme, async (scope) => { scope.em.create(ProjectEntity, { title: 'Rocket skates' }); await scope.em.flush() })
  await app.tenancy.run(globex, async (scope) => { scope.em.create(ProjectEntity, { title: 'Doomsday device' }); await scope.em.flush() })
}

test('domain resolver finds the tenant by its whole host, and only its rows', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['domain'] }, routes)
  await withTenants(app)
  const res = await app.inject({ url: '/whoami', headers: { host: 'shop.acme.test' } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json(), { identifier: 'acme', projects: ['Rocket skates'] })
  const other = await app.inject({ url: '/whoami', headers: { host: 'globex.test:8080' } })
  assert.deepEqual(other.json(), { identifier: 'globex', projects: ['Doomsday device'] })
  const unknown = await app.inject({ url: '/whoami', headers: { host: 'nobody.test' } })
  assert.equal(unknown.statusCode, 404)
  assert.equal(unknown.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  const central = await app.inject({ url: '/whoami', headers: { host: 'example.com' } })
  assert.equal(central.statusCode, 404)
  assert.equal(central.json().code, 'FST_TENANCY_NOT_IDENTIFIED')
  const ip = await app.inject({ url: '/whoami', headers: { host: '10.1.2.3' } })
  assert.equal(ip.json().code, 'FST_TENANCY_NOT_IDENTIFIED')
})

test('subdomain resolver takes the one label under a central domain, and nothing else', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com', 'localhost'], identification: ['subdomain'] }, routes)
  await withTenants(app)
  const found = await app.inject({ url: '/whoami', headers: { host: 'acme.example.com' } })
  assert.deepEqual(found.json(), { identifier: 'acme', projects: ['Rocket skates'] })
  const local = await app.inject({ url: '/whoami', headers: { host: 'globex.localhost:3000' } })
  assert.deepEqual(local.json(), { identifier: 'globex', projects: ['Doomsday device'] })
  const unknown = await app.inject({ url: '/whoami', headers: { host: 'nobody.example.com' } })
  assert.equal(unknown.statusCode, 404)
  assert.equal(unknown.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  // The central domain itself, deeper hosts, hosts outside the central domains and IP addresses are no subdomain.
  for (const host of ['example.com', 'a.acme.example.com', 'acme.elsewhere.org', '127.0.0.1', '[::1]:3000']) {
    const res = await app.inject({ url: '/whoami', headers: { host } })
    assert.equal(res.statusCode, 404, host)
    assert.equal(res.json().code, 'FST_TENANCY_NOT_IDENTIFIED', host)
  }
})

test('domain or subdomain: a subdomain of a central domain or any tenant domain both work', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain', 'domain'] }, routes)
  await withTenants(app)
  assert.equal((await app.inject({ url: '/whoami', headers: { host: 'acme.example.com' } })).json().identifier, 'acme')
  assert.equal((await app.inject({ url: '/whoami', headers: { host: 'globex.test' } })).json().identifier, 'globex')
  const unknown = await app.inject({ url: '/whoami', headers: { host: 'nobody.example.com' } })
  assert.equal(unknown.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('header resolver reads X-Tenant, or the header the options name', async (t) => {
  const { app } = await buildApp(t, { identification: ['header'] }, routes)
  await withTenants(app)
  const res = await app.inject({ url: '/whoami', headers: { 'x-tenant': 'globex' } })
  assert.deepEqual(res.json(), { identifier: 'globex', projects: ['Doomsday device'] })
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  assert.equal((await app.inject({ url: '/whoami' })).json().code, 'FST_TENANCY_NOT_IDENTIFIED')

  const custom = await buildApp(t, { identification: ['header'], header: 'X-Workspace' }, routes)
  await withTenants(custom.app)
  assert.equal((await custom.app.inject({ url: '/whoami', headers: { 'x-workspace': 'acme' } })).json().identifier, 'acme')
  assert.equal((await custom.app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json().code, 'FST_TENANCY_NOT_IDENTIFIED')
})

test('cookie resolver reads the tenant cookie, or the cookie the options name', async (t) => {
  const { app } = await buildApp(t, { identification: ['cookie'], cookie: 'workspace' }, routes)
  await withTenants(app)
  const res = await app.inject({ url: '/whoami', headers: { cookie: 'theme=dark; workspace=acme' } })
  assert.deepEqual(res.json(), { identifier: 'acme', projects: ['Rocket skates'] })
  assert.equal((await app.inject({ url: '/whoami', headers: { cookie: 'tenant=acme' } })).json().code, 'FST_TENANCY_NOT_IDENTIFIED')
  assert.equal((await app.inject({ url: '/whoami', headers: { cookie: 'workspace=nobody' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('path resolver reads the route prefix and hides the parameter from handlers', async (t) => {
  const { app } = await buildApp(t, { identification: ['path'] }, routes)
  await withTenants(app)
  const res = await app.inject({ url: '/t/globex/items/42' })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json(), { identifier: 'globex', params: { id: '42' } })
  assert.equal((await app.inject({ url: '/t/nobody/items/42' })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  // A tenant route without the parameter names no tenant.
  assert.equal((await app.inject({ url: '/whoami' })).json().code, 'FST_TENANCY_NOT_IDENTIFIED')
})

test('the path parameter is hidden from handlers also when an earlier resolver (the domain) decided', async (t) => {
  const { app } = await buildApp(t, { identification: ['domain', 'path'] }, routes)
  await withTenants(app)
  for (let i = 0; i < 2; i++) {
    // Twice: a lookup, then the cache.
    const res = await app.inject({ url: '/t/acme/items/42', headers: { host: 'globex.test' } })
    assert.deepEqual(res.json(), { identifier: 'globex', params: { id: '42' } })
  }
})

test('a resolver of your own joins the chain in the order given', async (t) => {
  const queryResolver = {
    name: 'query',
    resolve: (request: import('fastify').FastifyRequest) => {
      const value = (request.query as Record<string, string | undefined>).tenant
      return value === undefined ? null : { by: 'identifier' as const, value, resolver: 'query' }
    }
  }
  const { app } = await buildApp(t, { identification: [queryResolver, 'header'] }, routes)
  await withTenants(app)
  assert.equal((await app.inject({ url: '/whoami?tenant=acme' })).json().identifier, 'acme')
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'globex' } })).json().identifier, 'globex')
  // Both name a tenant: the first resolver in the list wins.
  assert.equal((await app.inject({ url: '/whoami?tenant=acme', headers: { 'x-tenant': 'globex' } })).json().identifier, 'acme')
})
