import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'
import { GenericTenant, tenancyPlugin, TenantEntity, type Tenant } from '../server/index.js'

const whoami = (app: import('fastify').FastifyInstance): void => {
  app.get('/whoami', async (request) => ({ identifier: request.tenant?.identifier, name: request.tenant?.name }))
}

test('the ORM provider finds tenants by identifier, key, resource key and domain, as entities', async (t) => {
  const { app } = await buildApp(t, { identification: ['header'] }, whoami)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['acme.test'] })
  const p = app.tenancy.tenants
  assert.equal((await p.byIdentifier('acme'))?.key, acme.key)
  assert.equal((await p.byKey(acme.key))?.identifier, 'acme')
  assert.equal((await p.byResourceKey(acme.resourceKey as string))?.identifier, 'acme')
  assert.equal((await p.byDomain?.('acme.test'))?.identifier, 'acme')
  assert.equal(await p.byIdentifier('nobody'), null)
  assert.equal(await p.byKey('01a20000-0000-7000-8000-000000000000'), null)
  assert.equal(await p.byKey('not-a-key'), null)
  assert.equal(await p.byResourceKey('01a20000-0000-7000-8000-000000000000'), null)
  const entity = await p.byIdentifier('acme')
  assert.equal(entity?.constructor.name === 'Object', false, 'an ORM entity, not a plain object')
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json(), { identifier: 'acme', name: 'Acme' })
  void TenantEntity
})

test('the database provider returns plain GenericTenant objects with plain SQL', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header', 'domain'], centralDomains: ['example.com'], provider: { driver: 'database' } }, whoami)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['acme.test'] })
  const found = await app.tenancy.tenants.byIdentifier('acme')
  assert.ok(found instanceof GenericTenant)
  assert.equal(found.key, acme.key)
  assert.equal(found.name, 'Acme')
  assert.equal(found.status, 'active')
  assert.equal((await app.tenancy.tenants.byKey(acme.key))?.identifier, 'acme')
  assert.equal((await app.tenancy.tenants.byResourceKey(acme.resourceKey as string))?.identifier, 'acme')
  assert.equal((await app.tenancy.tenants.byDomain?.('acme.test'))?.identifier, 'acme')
  assert.equal(await app.tenancy.tenants.byIdentifier('nobody'), null)
  assert.equal((await app.inject({ url: '/whoami', headers: { host: 'acme.test' } })).json().identifier, 'acme')

  // Tenants without resource keys: looking one up by resource key is a misconfiguration.
  const other = Fastify({ logger: false })
  await other.register(tenancyPlugin, { database: { url: central.url, prefix: central.prefix }, identification: ['header'], provider: { driver: 'database', resourceKeyColumn: null } })
  await other.ready()
  t.after(async () => { await other.close() })
  await assert.rejects(other.tenancy.tenants.byResourceKey(acme.resourceKey as string), (e: any) => e.code === 'FST_TENANCY_MISCONFIGURED' && /resource key/.test(e.message))
  void sql
})

test('a provider driver of your own is used by name, and one without byDomain cannot serve the domain resolver', async (t) => {
  const rows: Tenant[] = [
    { key: '01a20000-0000-7000-8000-00000000000a', identifier: 'memo', name: 'From memory', status: 'active' },
    { key: '01a20000-0000-7000-8000-00000000000b', identifier: 'paused', name: 'Paused', status: 'suspended' }
  ]
  const memory = (config: Record<string, unknown>) => ({
    name: `memory:${String(config.label)}`,
    byIdentifier: async (id: string) => rows.find((r) => r.identifier === id) ?? null,
    byKey: async (key: string) => rows.find((r) => r.key === key) ?? null,
    byResourceKey: async () => null
  })
  const { app } = await buildApp(t, { identification: ['header'], providerDrivers: { memory }, provider: { driver: 'memory', label: 'test' } }, whoami)
  assert.equal(app.tenancy.tenants.name, 'memory:test')
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'memo' } })).json(), { identifier: 'memo', name: 'From memory' })
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'paused' } })).json().code, 'FST_TENANCY_TENANT_SUSPENDED')
  assert.equal((await app.tenancy.tenants.byKey(rows[0]!.key))?.identifier, 'memo')

  const central = await freshCentral(t)
  const bad = Fastify({ logger: false })
  await assert.rejects(async () => {
    await bad.register(tenancyPlugin, { database: { url: central.url }, identification: ['domain'], providerDrivers: { memory }, provider: { driver: 'memory' } })
    await bad.ready()
  }, (e: any) => e.code === 'FST_TENANCY_MISCONFIGURED' && /look tenants up by domain/.test(e.message))
  await bad.close().catch(() => {})
})
