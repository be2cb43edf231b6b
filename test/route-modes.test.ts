import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import type { FastifyInstance } from 'fastify'

function routes (app: FastifyInstance): void {
  app.get('/t', async (request) => ({ mode: 'tenant', tenant: request.tenant?.identifier }))
  app.get('/c', { config: { tenancy: 'central' } }, async (request) => ({ mode: 'central', tenant: request.tenant }))
  app.get('/u', { config: { tenancy: 'universal' } }, async (request) => ({ mode: 'universal', tenant: request.tenant?.identifier ?? null }))
  app.get('/c-em', { config: { tenancy: 'central' } }, async (request) => ({ n: await request.tenantEm.count('Project', {}) }))
}

test('tenant, central and universal routes each take the requests they should', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain', 'domain'] }, routes)
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  const get = async (url: string, host: string): Promise<{ status: number, body: any }> => {
    const res = await app.inject({ url, headers: { host } })
    return { status: res.statusCode, body: res.json() }
  }
  assert.deepEqual(await get('/t', 'acme.example.com'), { status: 200, body: { mode: 'tenant', tenant: 'acme' } })
  assert.deepEqual(await get('/t', 'acme.test'), { status: 200, body: { mode: 'tenant', tenant: 'acme' } })
  const tenantOnCentral = await get('/t', 'example.com')
  assert.equal(tenantOnCentral.status, 404)
  assert.equal(tenantOnCentral.body.code, 'FST_TENANCY_NOT_IDENTIFIED')

  assert.deepEqual(await get('/c', 'example.com'), { status: 200, body: { mode: 'central', tenant: null } })
  for (const host of ['acme.example.com', 'acme.test']) {
    const centralOnTenant = await get('/c', host)
    assert.equal(centralOnTenant.status, 404, host)
    assert.equal(centralOnTenant.body.code, 'FST_TENANCY_CENTRAL_ONLY', host)
  }

  assert.deepEqual(await get('/u', 'example.com'), { status: 200, body: { mode: 'universal', tenant: null } })
  assert.deepEqual(await get('/u', 'acme.example.com'), { status: 200, body: { mode: 'universal', tenant: 'acme' } })
  assert.equal((await get('/u', 'nobody.example.com')).body.code, 'FST_TENANCY_UNKNOWN_TENANT')

  // Tenant-only work on a central route is a clear error with its code.
  const misuse = await get('/c-em', 'example.com')
  assert.equal(misuse.status, 500)
  assert.equal(misuse.body.code, 'FST_TENANCY_NO_TENANT_CONTEXT')
})

test('defaultRouteMode sets the mode of routes that do not choose one', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'], defaultRouteMode: 'central' }, (a) => {
    a.get('/plain', async (request) => ({ tenant: request.tenant }))
  })
  await app.tenancy.create({ identifier: 'acme' })
  assert.equal((await app.inject({ url: '/plain', headers: { host: 'example.com' } })).statusCode, 200)
  assert.equal((await app.inject({ url: '/plain', headers: { host: 'acme.example.com' } })).json().code, 'FST_TENANCY_CENTRAL_ONLY')
})

test('a suspended tenant gets 403, and a provisioning or failed one 503', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header'] }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  for (const [status, code, http] of [['suspended', 'FST_TENANCY_TENANT_SUSPENDED', 403], ['provisioning', 'FST_TENANCY_TENANT_INACTIVE', 503], ['failed', 'FST_TENANCY_TENANT_INACTIVE', 503], ['active', undefined, 200]] as const) {
    await sql(central.url, 'update tenants set status = $1 where key = $2', [status, acme.key])
    app.tenancy.invalidate()
    const res = await app.inject({ url: '/t', headers: { 'x-tenant': 'acme' } })
    assert.equal(res.statusCode, http, status)
    assert.equal(res.json().code, code, status)
  }
})
