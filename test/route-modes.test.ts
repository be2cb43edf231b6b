import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import type { FastifyInstance } from 'fastify'

function routes (app: FastifyInstance): void {
  app.get('/t', async (request) => ({ mode: 'tenant', tenant: request.tenant?.identifier }))
  app.get('/c', { config: { tenancy: 'central' } }, async (request) => ({ mode: 'central', tenant: request.tenant, current: app.tenancy.current() }))
  app.get('/u', { config: { tenancy: 'universal' } }, async (request) => ({ mode: 'universal', tenant: request.tenant?.identifier ?? null }))
  app.get('/c-em', { config: { tenancy: 'central' } }, async (request) => ({ n: await request.tenantEm.count('Project', {}) }))
  app.get('/u-em', { config: { tenancy: 'universal' } }, async (request) => ({ n: await request.tenantEm.count('Project', {}) }))
}

async function get (app: FastifyInstance, url: string, headers: Record<string, string>): Promise<{ status: number, body: any }> {
  const res = await app.inject({ url, headers })
  return { status: res.statusCode, body: res.json() }
}

test('a tenant route needs a tenant: on a central domain it is a 404 FST_TENANCY_NOT_IDENTIFIED', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain', 'domain'] }, routes)
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  assert.deepEqual(await get(app, '/t', { host: 'acme.example.com' }), { status: 200, body: { mode: 'tenant', tenant: 'acme' } })
  assert.deepEqual(await get(app, '/t', { host: 'acme.test' }), { status: 200, body: { mode: 'tenant', tenant: 'acme' } })
  for (const host of ['example.com', 'example.com:8080', '127.0.0.1']) {
    const res = await get(app, '/t', { host })
    assert.equal(res.status, 404, host)
    assert.equal(res.body.code, 'FST_TENANCY_NOT_IDENTIFIED', host)
  }
  assert.equal((await get(app, '/t', { host: 'nobody.example.com' })).body.code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('a central route is served on central domains only, with request.tenant null, and ignores a tenant named in a header', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com', 'admin.example.org'], identification: ['subdomain', 'domain', 'header'] }, routes)
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  for (const host of ['example.com', 'example.com:3000', 'admin.example.org']) {
    assert.deepEqual(await get(app, '/c', { host }), { status: 200, body: { mode: 'central', tenant: null, current: null } }, host)
  }
  // A tenant named by header on a central route is not taken up.
  assert.deepEqual(await get(app, '/c', { host: 'example.com', 'x-tenant': 'acme' }), { status: 200, body: { mode: 'central', tenant: null, current: null } })
  // On a tenant's host, or any host that is not central, it is a 404 FST_TENANCY_CENTRAL_ONLY.
  for (const host of ['acme.example.com', 'acme.test', 'nobody.example.com', 'elsewhere.org']) {
    const res = await get(app, '/c', { host })
    assert.equal(res.status, 404, host)
    assert.equal(res.body.code, 'FST_TENANCY_CENTRAL_ONLY', host)
  }
})

test('a universal route takes a tenant when the request names one, and none on a central domain', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain', 'domain', 'header'] }, routes)
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  await app.tenancy.create({ identifier: 'globex' })
  assert.deepEqual(await get(app, '/u', { host: 'example.com' }), { status: 200, body: { mode: 'universal', tenant: null } })
  assert.deepEqual(await get(app, '/u', { host: 'acme.example.com' }), { status: 200, body: { mode: 'universal', tenant: 'acme' } })
  assert.deepEqual(await get(app, '/u', { host: 'acme.test' }), { status: 200, body: { mode: 'universal', tenant: 'acme' } })
  assert.deepEqual(await get(app, '/u', { host: 'example.com', 'x-tenant': 'globex' }), { status: 200, body: { mode: 'universal', tenant: 'globex' } })
  // Naming a tenant that does not exist is still a 404, not a silent central request.
  const unknown = await get(app, '/u', { host: 'nobody.example.com' })
  assert.equal(unknown.status, 404)
  assert.equal(unknown.body.code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('request.tenantEm without a tenant is a 500 FST_TENANCY_NO_TENANT_CONTEXT that says what to do', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain'] }, routes)
  await app.tenancy.create({ identifier: 'acme' })
  for (const url of ['/c-em', '/u-em']) {
    const misuse = await get(app, url, { host: 'example.com' })
    assert.equal(misuse.status, 500, url)
    assert.equal(misuse.body.code, 'FST_TENANCY_NO_TENANT_CONTEXT', url)
    assert.match(misuse.body.message, /request\.tenantEm needs a tenant context/)
  }
  // The same universal route with a tenant reads the tenant's database.
  assert.deepEqual(await get(app, '/u-em', { host: 'acme.example.com' }), { status: 200, body: { n: 0 } })
  assert.throws(() => app.tenancy.em(), (e: any) => e.code === 'FST_TENANCY_NO_TENANT_CONTEXT')
})

test('defaultRouteMode sets the mode of every route that does not choose one', async (t) => {
  const plain = (a: FastifyInstance): void => {
    a.get('/plain', async (request) => ({ tenant: request.tenant?.identifier ?? null }))
    a.get('/chosen', { config: { tenancy: 'tenant' } }, async (request) => ({ tenant: request.tenant?.identifier ?? null }))
  }
  const expect = async (app: FastifyInstance, url: string, host: string, status: number, body: unknown): Promise<void> => {
    const res = await get(app, url, { host })
    assert.equal(res.status, status, `${url} on ${host}`)
    if (status === 200) assert.deepEqual(res.body, body, `${url} on ${host}`)
    else assert.equal(res.body.code, body, `${url} on ${host}`)
  }

  // Unset: tenant.
  const byDefault = await buildApp(t, { centralDomains: ['example.com'] }, plain)
  await byDefault.app.tenancy.create({ identifier: 'acme' })
  await expect(byDefault.app, '/plain', 'acme.example.com', 200, { tenant: 'acme' })
  await expect(byDefault.app, '/plain', 'example.com', 404, 'FST_TENANCY_NOT_IDENTIFIED')

  // central: plain routes are central; a route that says tenant stays a tenant route.
  const central = await buildApp(t, { centralDomains: ['example.com'], defaultRouteMode: 'central' }, plain, byDefault.central)
  await expect(central.app, '/plain', 'example.com', 200, { tenant: null })
  await expect(central.app, '/plain', 'acme.example.com', 404, 'FST_TENANCY_CENTRAL_ONLY')
  await expect(central.app, '/chosen', 'acme.example.com', 200, { tenant: 'acme' })
  await expect(central.app, '/chosen', 'example.com', 404, 'FST_TENANCY_NOT_IDENTIFIED')

  // universal: plain routes take either.
  const universal = await buildApp(t, { centralDomains: ['example.com'], defaultRouteMode: 'universal' }, plain, byDefault.central)
  await expect(universal.app, '/plain', 'example.com', 200, { tenant: null })
  await expect(universal.app, '/plain', 'acme.example.com', 200, { tenant: 'acme' })
  await expect(universal.app, '/plain', 'nobody.example.com', 404, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('a suspended tenant gets a 403 FST_TENANCY_TENANT_SUSPENDED, a provisioning or failed one a 503 FST_TENANCY_TENANT_INACTIVE, on tenant and universal routes', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header'] }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const cases = [
    ['suspended', 403, 'FST_TENANCY_TENANT_SUSPENDED', /"acme" is suspended/],
    ['provisioning', 503, 'FST_TENANCY_TENANT_INACTIVE', /"acme" is provisioning/],
    ['failed', 503, 'FST_TENANCY_TENANT_INACTIVE', /"acme" is failed/]
  ] as const
  for (const [status, http, code, message] of cases) {
    await sql(central.url, 'update tenancy.tenants set status = $1 where key = $2', [status, acme.key])
    app.tenancy.invalidate()
    for (const url of ['/t', '/u']) {
      const res = await get(app, url, { 'x-tenant': 'acme' })
      assert.equal(res.status, http, `${status} ${url}`)
      assert.equal(res.body.code, code, `${status} ${url}`)
      assert.match(res.body.message, message)
    }
    // A central route does not care.
    assert.equal((await get(app, '/c', { host: 'localhost', 'x-tenant': 'acme' })).status, 200)
  }
  await sql(central.url, "update tenancy.tenants set status = 'active' where key = $1", [acme.key])
  app.tenancy.invalidate()
  assert.deepEqual(await get(app, '/t', { 'x-tenant': 'acme' }), { status: 200, body: { mode: 'tenant', tenant: 'acme' } })
})
