import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql } from './helpers/database.js'
import { tenantDatabaseName } from '../server/index.js'

const NASTY = ['', 'x'.repeat(300), '..', 'a..b', '%00', 'acme\u0000', "acme'", 'acme"', "acme'; drop table tenants;--", 'ac me', 'ACME', 'Acme', 'xn--acme-xyz', '\u0430cme', 'acme/../globex', '-acme', 'acme-']

test('hostile Host headers get a 400 with a code, never a 500, and touch nothing', async (t) => {
  const { app, central } = await buildApp(t, { centralDomains: ['example.com'], identification: ['subdomain', 'domain'] }, (a) => {
    a.get('/t', async (request) => ({ tenant: request.tenant?.identifier }))
  })
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  const hosts = [...NASTY.filter((v) => v !== '').map((v) => `${v}.example.com`), '', 'x'.repeat(300), 'ACME.test', 'xn--acme-xyz.example.com', 'acme.example.com:99999', 'acme.example.com:abc', '[::1', 'acme..example.com', '\u0430cme.test']
  for (const host of hosts) {
    const res = await app.inject({ url: '/t', headers: { host } })
    assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${JSON.stringify(host)} -> ${res.statusCode}`)
    assert.match(res.json().code, /^FST_TENANCY_/, JSON.stringify(host))
  }
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenants'))[0]?.n, 1)
})

test('hostile identifiers in the header, cookie and path get a 400 with a code, never a 500', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['path', 'header', 'cookie'] }, (a) => {
    a.get('/t', async (request) => ({ tenant: request.tenant?.identifier }))
    a.register(async (s) => { s.get('/x', async (request) => ({ tenant: request.tenant?.identifier })) }, { prefix: '/p/:tenant' })
  })
  await app.tenancy.create({ identifier: 'acme' })
  for (const value of NASTY) {
    const viaHeader = await app.inject({ url: '/t', headers: { 'x-tenant': value } })
    // An empty header may be dropped on the way in: then no tenant is named (404).
    assert.equal(viaHeader.statusCode, value === '' ? viaHeader.statusCode : 400, `header ${JSON.stringify(value)}`)
    assert.ok([400, 404].includes(viaHeader.statusCode))
    assert.match(viaHeader.json().code, /^FST_TENANCY_(INVALID_IDENTIFIER|NOT_IDENTIFIED)$/)
    const viaCookie = await app.inject({ url: '/t', headers: { cookie: `tenant=${encodeURIComponent(value)}` } })
    assert.ok([400, 404].includes(viaCookie.statusCode), `cookie ${JSON.stringify(value)} -> ${viaCookie.statusCode}`)
    if (value !== '') {
      const viaPath = await app.inject({ url: `/p/${encodeURIComponent(value)}/x` })
      assert.ok(viaPath.statusCode >= 400 && viaPath.statusCode < 500, `path ${JSON.stringify(value)} -> ${viaPath.statusCode}`)
      assert.notEqual(viaPath.json().tenant, 'acme')
    }
  }
  assert.equal((await app.inject({ url: '/t', headers: { 'x-tenant': 'acme' } })).json().tenant, 'acme')
  assert.equal((await sql(central.url, 'select count(*)::int as n from tenants'))[0]?.n, 1)
})

test('tenant database names come from the key only, and anything else is refused before SQL', async (t) => {
  const { app } = await buildApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  assert.match(app.tenancy.databaseName(acme), /^t[0-9a-f]{10}_[0-9a-f]{32}$/)
  assert.equal(app.tenancy.databaseName(acme).includes('acme'), false)
  for (const key of ['acme', "x'; drop database postgres;--", '../etc', '01A20000-0000-7000-8000-000000000000', '']) {
    assert.throws(() => tenantDatabaseName(key), (e: any) => e.code === 'FST_TENANCY_UNSAFE_DATABASE_NAME', key)
  }
})

test('bad identifiers and domains are refused by create before any database is made', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com'] })
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  await app.tenancy.idle()
  const count = async (): Promise<number> => Number((await sql(serverUrl(), 'select count(*)::int as n from pg_database'))[0]?.n)
  const before = await count()
  for (const identifier of NASTY) {
    await assert.rejects(app.tenancy.create({ identifier }), (e: any) => e.code === 'FST_TENANCY_INVALID_IDENTIFIER', JSON.stringify(identifier))
  }
  await assert.rejects(app.tenancy.create({ identifier: 'admin' }), (e: any) => e.code === 'FST_TENANCY_IDENTIFIER_TAKEN')
  await assert.rejects(app.tenancy.create({ identifier: 'acme' }), (e: any) => e.code === 'FST_TENANCY_IDENTIFIER_TAKEN')
  for (const domain of ['', 'ACME.test', 'localhost', 'example.com', '127.0.0.1', 'acme.test:80', 'a..b', 'xn--x.test', "x'.test", 'a b.test', 'x'.repeat(300)]) {
    await assert.rejects(app.tenancy.create({ identifier: 'fresh', domains: [domain] }), (e: any) => e.code === 'FST_TENANCY_INVALID_DOMAIN', JSON.stringify(domain))
  }
  await assert.rejects(app.tenancy.create({ identifier: 'fresh', domains: ['acme.test'] }), (e: any) => e.code === 'FST_TENANCY_DOMAIN_TAKEN')
  await app.tenancy.idle()
  assert.equal(await count(), before, 'no database was made')
  assert.equal(await app.tenancy.find('fresh'), null, 'no half-made tenant')
})
