import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { ProjectEntity } from '../server/index.js'
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
