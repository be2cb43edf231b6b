import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { join, resolve } from 'node:path'
import Fastify from 'fastify'
import { tenancyPlugin, type Bootstrapper } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'

test('a tenant request logs through a child logger tagged with the tenant key and identifier', async (t) => {
  const central = await freshCentral(t)
  const lines: any[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(tenancyPlugin, { database: { url: central.url, prefix: central.prefix }, identification: ['header'] })
  app.get('/hello', async (request) => { request.log.info('hello from the handler'); return { ok: true } })
  await app.ready()
  t.after(async () => { await app.close() })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await app.inject({ url: '/hello', headers: { 'x-tenant': 'acme' } })
  const line = lines.find((l) => l.msg === 'hello from the handler')
  assert.deepEqual(line?.tenant, { key: acme.key, identifier: 'acme' })
})

test('storage lives under the resource key, refuses paths that leave it, and the cache prefix uses the key; a rename keeps both', async (t) => {
  const { app, central } = await buildApp(t, { storageRoot: '.tmp/storage-test' })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const root = resolve('.tmp/storage-test', acme.resourceKey as string)
  await app.tenancy.run(acme, async (scope) => {
    assert.equal(scope.storage?.path('a/b.txt'), join(root, 'a/b.txt'))
    assert.equal(scope.storage?.root, root)
    for (const bad of ['../x', '/etc/passwd', 'a/../../x', 'nul\u0000byte']) {
      assert.throws(() => scope.storage?.path(bad), (e: any) => e.code === 'FST_TENANCY_STORAGE_PATH', bad)
    }
    assert.equal(scope.cacheKey('x'), `tenant:${acme.key}:x`)
  })
  await sql(central.url, 'update tenants set identifier = $1 where key = $2', ['acme-corp', acme.key])
  app.tenancy.invalidate()
  const renamed = await app.tenancy.find('acme-corp')
  await app.tenancy.run(renamed!, async (scope) => {
    assert.equal(scope.storage?.root, root)
    assert.equal(scope.cacheKey('x'), `tenant:${acme.key}:x`)
  })
})

test('a bootstrapper of your own runs when each tenant request starts and is reverted when it ends', async (t) => {
  const calls: string[] = []
  const audit: Bootstrapper = {
    name: 'audit',
    bootstrap (scope) { calls.push(`bootstrap ${scope.tenant.identifier}`); scope.values.set('audit', true) },
    revert (scope) { calls.push(`revert ${scope.tenant.identifier}`) }
  }
  const { app } = await buildApp(t, { identification: ['header'], bootstrappers: [audit] }, (a) => {
    a.get('/x', async () => ({ audited: a.tenancy.scope()?.values.get('audit') ?? false }))
  })
  await app.tenancy.create({ identifier: 'acme' })
  const res = await app.inject({ url: '/x', headers: { 'x-tenant': 'acme' } })
  assert.deepEqual(res.json(), { audited: true })
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(calls, ['bootstrap acme', 'revert acme'])
})
