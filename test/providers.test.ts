import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import { Utils } from '@mikro-orm/core'
import { buildApp } from './helpers/app.js'
import { freshCentral } from './helpers/database.js'
import { GenericTenant, tenancyPlugin, type ProviderDriver, type Tenant, type TenancyOptions } from '../server/index.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

/** A well-formed UUID (v7) that no tenant has. */
const NOBODY = '01a20000-0000-7000-8000-000000000000'

/** A tenant route that answers with the tenant and the rows of its own database. */
function routes (app: FastifyInstance): void {
  app.get('/whoami', async (request) => {
    const projects = await request.tenantEm.find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
    return { identifier: request.tenant?.identifier, name: request.tenant?.name, projects: projects.map((p) => p.title) }
  })
}

async function tenantWithProject (app: FastifyInstance, identifier: string, title: string, domains: string[] = []): Promise<Tenant> {
  const tenant = await app.tenancy.create({ identifier, name: identifier.toUpperCase(), domains, data: { plan: 'pro' } })
  await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title }); await scope.em.flush() })
  return tenant
}

/** The three lookups of a provider, found and not found; a key is never taken for an identifier, or the other way round. */
async function assertLookups (app: FastifyInstance, tenant: Tenant): Promise<void> {
  const p = app.tenancy.tenants
  const resourceKey = tenant.resourceKey as string
  assert.equal((await p.byIdentifier(tenant.identifier))?.key, tenant.key)
  assert.equal((await p.byKey(tenant.key))?.identifier, tenant.identifier)
  assert.equal((await p.byResourceKey(resourceKey))?.key, tenant.key)
  assert.equal(await p.byIdentifier('nobody'), null)
  assert.equal(await p.byKey(NOBODY), null)
  assert.equal(await p.byResourceKey(NOBODY), null)
  // Each lookup reads its own identity only.
  assert.equal(await p.byIdentifier(tenant.key), null)
  assert.equal(await p.byKey(tenant.identifier), null)
  assert.equal(await p.byKey(resourceKey), null)
  assert.equal(await p.byResourceKey(tenant.key), null)
  // Malformed keys are a miss, not an error.
  assert.equal(await p.byKey('not-a-key'), null)
  assert.equal(await p.byResourceKey("'; drop table tenants;--"), null)
}

test('the ORM provider (the default) finds tenants by identifier, key, resource key and domain, as MikroORM entities, and serves requests', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['header', 'domain'] }, routes)
  assert.equal(app.tenancy.tenants.name, 'orm')
  const acme = await tenantWithProject(app, 'acme', 'Rocket skates', ['acme.test'])
  await tenantWithProject(app, 'globex', 'Doomsday device')
  await assertLookups(app, acme)

  const entity = await app.tenancy.tenants.byIdentifier('acme')
  assert.equal(Utils.isEntity(entity), true, 'a MikroORM entity')
  assert.equal(entity instanceof GenericTenant, false)
  assert.deepEqual(entity?.data, { plan: 'pro' })
  assert.equal((await app.tenancy.tenants.byDomain?.('acme.test'))?.key, acme.key)
  assert.equal(await app.tenancy.tenants.byDomain?.('nobody.test'), null)

  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json(), { identifier: 'acme', name: 'ACME', projects: ['Rocket skates'] })
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { host: 'acme.test' } })).json(), { identifier: 'acme', name: 'ACME', projects: ['Rocket skates'] })
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'globex' } })).json(), { identifier: 'globex', name: 'GLOBEX', projects: ['Doomsday device'] })
  const unknown = await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })
  assert.equal(unknown.statusCode, 404)
  assert.equal(unknown.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('the database provider returns plain GenericTenant objects, not ORM entities, and serves requests', async (t) => {
  const { app, central } = await buildApp(t, { centralDomains: ['example.com'], identification: ['header', 'domain'], provider: { driver: 'database' } }, routes)
  assert.equal(app.tenancy.tenants.name, 'database')
  const acme = await tenantWithProject(app, 'acme', 'Rocket skates', ['acme.test'])
  await tenantWithProject(app, 'globex', 'Doomsday device')
  await assertLookups(app, acme)

  for (const found of [await app.tenancy.tenants.byIdentifier('acme'), await app.tenancy.tenants.byKey(acme.key), await app.tenancy.tenants.byResourceKey(acme.resourceKey as string), await app.tenancy.tenants.byDomain?.('acme.test')]) {
    assert.ok(found instanceof GenericTenant, 'a GenericTenant')
    assert.equal(Utils.isEntity(found), false, 'not an ORM entity')
    assert.deepEqual({ ...found }, {
      key: acme.key,
      identifier: 'acme',
      resourceKey: acme.resourceKey,
      name: 'ACME',
      status: 'active',
      databaseHost: 'default',
      data: { plan: 'pro' },
      heldAt: null,
      isolation: null
    })
  }
  assert.equal(await app.tenancy.tenants.byDomain?.('nobody.test'), null)

  assert.deepEqual((await app.inject({ url: '/whoami', headers: { host: 'acme.test' } })).json(), { identifier: 'acme', name: 'ACME', projects: ['Rocket skates'] })
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'globex' } })).json(), { identifier: 'globex', name: 'GLOBEX', projects: ['Doomsday device'] })
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')

  // Configured without a resource key column, a resource key lookup is a misconfiguration (at run time, as in Sprout).
  const noResources = Fastify({ logger: false })
  try {
    await noResources.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['header'], provider: { driver: 'database', resourceKeyColumn: null }, cache: false })
    routes(noResources)
    await noResources.ready()
    await assert.rejects(noResources.tenancy.tenants.byResourceKey(acme.resourceKey as string), (e: any) => e.code === 'FST_TENANCY_MISCONFIGURED' && /resource key/.test(e.message))
    // The other lookups, and requests, still work.
    assert.equal((await noResources.tenancy.tenants.byKey(acme.key))?.identifier, 'acme')
    assert.deepEqual((await noResources.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json(), { identifier: 'acme', name: 'ACME', projects: ['Rocket skates'] })
  } finally {
    await noResources.close()
  }
})

test('the database provider without a domains table cannot serve the domain resolver: ready() rejects with FST_TENANCY_MISCONFIGURED', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify({ logger: false })
  await assert.rejects(async () => {
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['domain'], provider: { driver: 'database', domainsTable: null } })
    await app.ready()
  }, (e: any) => e.code === 'FST_TENANCY_MISCONFIGURED' && /domain/.test(e.message))
  await app.close().catch(() => {})
})

test('a provider driver of your own, registered by name, gets its configuration and serves lookups and requests', async (t) => {
  // An in-memory store of tenants; the test fills it with tenants made by app.tenancy.create.
  const store: Tenant[] = []
  const calls: string[] = []
  let given: { config: Record<string, unknown>, hasOrm: boolean, hasExecute: boolean } | undefined
  const memory: ProviderDriver = (config, context) => {
    given = { config, hasOrm: typeof context.orm?.em === 'object', hasExecute: typeof context.execute === 'function' }
    return {
      name: 'memory',
      byIdentifier: async (identifier) => { calls.push(`identifier ${identifier}`); return store.find((r) => r.identifier === identifier) ?? null },
      byKey: async (key) => { calls.push(`key ${key}`); return store.find((r) => r.key === key) ?? null },
      byResourceKey: async (resourceKey) => { calls.push(`resource ${resourceKey}`); return store.find((r) => r.resourceKey === resourceKey) ?? null }
    }
  }
  let seen: Tenant | null = null
  const { app } = await buildApp(t, { identification: ['header'], providerDrivers: { memory }, provider: { driver: 'memory', region: 'eu' } }, (a) => {
    routes(a)
    a.get('/same', async (request) => { seen = request.tenant; return { ok: true } })
  })
  assert.deepEqual(given, { config: { driver: 'memory', region: 'eu' }, hasOrm: true, hasExecute: true })
  assert.equal(app.tenancy.tenants.name, 'memory')

  const acme = await tenantWithProject(app, 'acme', 'Rocket skates')
  // Before the store knows it, the provider does not find it: the provider is the only source.
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  const mine: Tenant = { key: acme.key, identifier: 'acme', resourceKey: acme.resourceKey, name: 'Acme from memory', status: 'active' }
  store.push(mine)
  app.tenancy.invalidate()

  await assertLookups(app, mine)
  assert.ok(calls.includes('identifier acme') && calls.includes(`key ${acme.key}`) && calls.includes(`resource ${acme.resourceKey as string}`))

  // End to end: the tenant the provider returned is the request's tenant, on its own database.
  assert.deepEqual((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })).json(), { identifier: 'acme', name: 'Acme from memory', projects: ['Rocket skates'] })
  await app.inject({ url: '/same', headers: { 'x-tenant': 'acme' } })
  assert.equal(seen, mine, 'the very object the provider returned')

  // The provider does not judge status; the plugin does.
  store.push({ key: '01a20000-0000-7000-8000-00000000000b', identifier: 'paused', name: 'Paused', status: 'suspended' })
  const paused = await app.inject({ url: '/whoami', headers: { 'x-tenant': 'paused' } })
  assert.equal(paused.statusCode, 403)
  assert.equal(paused.json().code, 'FST_TENANCY_TENANT_SUSPENDED')
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('a provider of your own without byDomain makes ready() reject with FST_TENANCY_MISCONFIGURED when the domain resolver is used', async (t) => {
  const central = await freshCentral(t)
  const noDomains: ProviderDriver = () => ({ name: 'memory', byIdentifier: async () => null, byKey: async () => null, byResourceKey: async () => null })
  const lacksByKey = (() => ({ name: 'broken', byIdentifier: async () => null, byResourceKey: async () => null })) as unknown as ProviderDriver
  const cases: Array<[string, Partial<TenancyOptions>, RegExp]> = [
    ['the domain resolver', { identification: ['header', 'domain'], providerDrivers: { memory: noDomains }, provider: { driver: 'memory' } }, /domain.*"memory"/],
    ['the default resolvers (subdomain, domain)', { providerDrivers: { memory: noDomains }, provider: { driver: 'memory' } }, /domain/],
    ['a provider without byKey', { identification: ['header'], providerDrivers: { broken: lacksByKey }, provider: { driver: 'broken' } }, /byKey/]
  ]
  for (const [label, options, message] of cases) {
    const app = Fastify({ logger: false })
    await assert.rejects(async () => {
      await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, ...options, database: { url: central.url, prefix: central.prefix } })
      await app.ready()
    }, (e: any) => e.code === 'FST_TENANCY_MISCONFIGURED' && message.test(e.message), label)
    await app.close().catch(() => {})
  }
  // Without the domain resolver the same provider is fine.
  const fine = Fastify({ logger: false })
  await fine.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['header', 'subdomain'], providerDrivers: { memory: noDomains }, provider: { driver: 'memory' } })
  await fine.ready()
  await fine.close()
})
