import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { tenancyPlugin, TenantEntity, type Bootstrapper, type Tenant } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { freshCentral } from './helpers/database.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'
import { until } from './helpers/poll.js'
import { randomFor, shuffle } from './helpers/random.js'

/** One turn of the event loop: an await that other work runs during (no time passes for its own sake). */
const aTurnLater = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** A storage root of this test's own, removed when it ends. */
function storageRoot (t: { after: (fn: () => Promise<void>) => void }): string {
  const dir = join('.tmp', `context-storage-${randomBytes(4).toString('hex')}`)
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Renames a tenant the way an admin would: through the ORM, which drops the cached tenants on flush. */
async function rename (app: FastifyInstance, key: string, identifier: string): Promise<void> {
  const em = app.tenancy.orm.em.fork()
  const row = await em.findOneOrFail(TenantEntity, { key })
  row.identifier = identifier
  await em.flush()
}

test('a log line written in a tenant route comes from a child logger tagged with the tenant key and identifier', async (t) => {
  const central = await freshCentral(null)
  const lines: any[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.after(async () => { await app.close(); await central.drop() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['header'] })
  app.get('/hello', async (request) => { request.log.info('hello from the tenant route'); return { ok: true } })
  app.get('/later', async (request) => { await aTurnLater(); request.log.info('after an await'); return { ok: true } })
  app.get('/central', { config: { tenancy: 'central' } }, async (request) => { request.log.info('hello from the central route'); return { ok: true } })
  await app.ready()
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })

  await app.inject({ url: '/hello', headers: { 'x-tenant': 'acme' } })
  await app.inject({ url: '/later', headers: { 'x-tenant': 'globex' } })
  await app.inject({ url: '/central', headers: { host: 'localhost' } })
  await app.tenancy.run(acme, (scope) => { scope.log.info('inside run') })
  const line = (msg: string): any => lines.find((l) => l.msg === msg)
  assert.deepEqual(line('hello from the tenant route')?.tenant, { key: acme.key, identifier: 'acme' })
  assert.deepEqual(line('after an await')?.tenant, { key: globex.key, identifier: 'globex' })
  assert.equal(typeof line('hello from the tenant route')?.reqId, 'string', 'still the request logger, with its request id')
  assert.equal(line('hello from the central route')?.tenant, undefined)
  assert.deepEqual(line('inside run')?.tenant, { key: acme.key, identifier: 'acme' })
  // Fastify's own line for the response is the request's logger too: it names the tenant.
  const completed = lines.filter((l) => l.msg === 'request completed')
  assert.deepEqual(completed.map((l) => l.tenant?.identifier), ['acme', 'globex', undefined])
  // The app's logger is never tagged in place, not after requests nor after run().
  app.log.info('from the app')
  assert.equal(line('from the app')?.tenant, undefined)

  // After a rename the lines carry the new identifier and the same key.
  await rename(app, acme.key, 'initech')
  await app.inject({ url: '/hello', headers: { 'x-tenant': 'initech' } })
  assert.deepEqual(lines.filter((l) => l.msg === 'hello from the tenant route').at(-1)?.tenant, { key: acme.key, identifier: 'initech' })
})

test('tenant storage lives under storageRoot/<resource key>/ and refuses paths that leave it', async (t) => {
  const root = storageRoot(t)
  const { app } = await buildApp(t, { storageRoot: root, identification: ['header'] }, (a) => {
    a.get('/file', async () => ({ path: a.tenancy.scope()?.storage?.path('uploads/logo.png') }))
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  const folder = resolve(root, acme.resourceKey as string)

  assert.equal(await app.tenancy.run(acme, (scope) => scope.storage?.path('a/b.txt')), join(folder, 'a', 'b.txt'))
  await app.tenancy.run(acme, (scope) => {
    const storage = scope.storage
    assert.ok(storage !== null)
    assert.equal(storage.root, folder)
    assert.equal(storage.path('a/./c/../b.txt'), join(folder, 'a', 'b.txt'), 'a path that stays inside is fine')
    assert.equal(storage.path(''), folder)
    for (const bad of ['../x', '..', '/etc/passwd', 'a/../../x', `../${globex.resourceKey as string}/secret.txt`, 'a/b/../../../x', 'nul\u0000byte', `${folder}/../x`]) {
      assert.throws(() => storage.path(bad), (e: any) => e.code === 'FST_TENANCY_STORAGE_PATH' && e.statusCode === 400, JSON.stringify(bad))
    }
  })
  assert.equal(await app.tenancy.run(globex, (scope) => scope.storage?.root), resolve(root, globex.resourceKey as string))
  assert.equal(existsSync(folder), false, 'nothing is made on disk until the app writes')
  // In a request, through the current scope.
  assert.deepEqual((await app.inject({ url: '/file', headers: { 'x-tenant': 'acme' } })).json(), { path: join(folder, 'uploads', 'logo.png') })
})

test('tenant cache keys are prefixed with tenant:<key>:, or the cachePrefix option, and each request keeps its own through awaits', async (t) => {
  // A latch: each request waits in its handler until all are in, then they go on in a seeded shuffled order.
  const waiting: Array<() => void> = []
  const { app, central } = await buildApp(t, { identification: ['header'] }, (a) => {
    a.get('/key', async () => {
      await new Promise<void>((resolve) => { waiting.push(resolve) })
      return { key: a.tenancy.scope()?.cacheKey('x') }
    })
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  assert.equal(await app.tenancy.run(acme, (scope) => scope.cacheKey('x')), `tenant:${acme.key}:x`)
  assert.equal(await app.tenancy.run(globex, (scope) => scope.cacheKey('users:1')), `tenant:${globex.key}:users:1`)
  assert.equal(app.tenancy.scope(), null, 'no scope outside a tenant context')

  const requests = Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? acme : globex)
  const answering = Promise.all(requests.map(async (tenant) => (await app.inject({ url: '/key', headers: { 'x-tenant': tenant.identifier } })).json().key))
  try {
    await until(() => waiting.length, { is: (n) => n === requests.length, what: 'all 20 requests waiting in the handler at once' })
  } finally {
    for (const go of shuffle(waiting, randomFor(t))) go()
  }
  const answers = await answering
  assert.deepEqual(answers, requests.map((tenant) => `tenant:${tenant.key}:x`))

  const custom = await buildApp(t, { cachePrefix: 'shop:' }, () => {}, central)
  assert.equal(await custom.app.tenancy.run(acme, (scope) => scope.cacheKey('x')), `shop:${acme.key}:x`)
})

test('a bootstrapper of your own runs after the shipped ones when a tenant request starts, and is reverted when it ends', async (t) => {
  const calls: string[] = []
  const audit: Bootstrapper = {
    name: 'audit',
    bootstrap (scope) {
      // The shipped bootstrappers ran first.
      calls.push(`bootstrap ${scope.tenant.identifier} ${String(scope.cachePrefix !== null && scope.storage !== null)}`)
      scope.values.set('audit', true)
    },
    revert (scope) { calls.push(`revert ${scope.tenant.identifier}`) }
  }
  const { app, central } = await buildApp(t, { identification: ['header'], bootstrappers: [audit] }, (a) => {
    a.get('/x', async () => ({ audited: a.tenancy.scope()?.values.get('audit') ?? false, calls: [...calls] }))
    a.get('/boom', async () => { throw new Error('the handler failed') })
    a.get('/c', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const paused = await app.tenancy.create({ identifier: 'paused' })
  await app.tenancy.orm.em.getConnection().execute("update tenancy.tenants set status = 'suspended' where key = ?", [paused.key])
  app.tenancy.invalidate()
  calls.length = 0 // provisioning may have run bootstrappers (the seeder runs as the tenant)

  // While the handler runs, the tenant is bootstrapped and not yet reverted.
  const res = await app.inject({ url: '/x', headers: { 'x-tenant': 'acme' } })
  assert.deepEqual(res.json(), { audited: true, calls: ['bootstrap acme true'] })
  await until(() => calls.length === 2, { what: 'the request is reverted once its response closed' })
  assert.deepEqual(calls, ['bootstrap acme true', 'revert acme'])

  // A failing handler is reverted too.
  calls.length = 0
  assert.equal((await app.inject({ url: '/boom', headers: { 'x-tenant': 'acme' } })).statusCode, 500)
  await until(() => calls.length === 2, { what: 'the failed request is reverted' })
  assert.deepEqual(calls, ['bootstrap acme true', 'revert acme'])

  // No tenant context, no bootstrapping: central routes, unknown and suspended tenants.
  calls.length = 0
  assert.equal((await app.inject({ url: '/c', headers: { host: 'localhost' } })).statusCode, 200)
  assert.equal((await app.inject({ url: '/x', headers: { 'x-tenant': 'nobody' } })).statusCode, 404)
  assert.equal((await app.inject({ url: '/x', headers: { 'x-tenant': 'paused' } })).statusCode, 403)
  // Then a tenant request: once its revert is in, a bootstrap of the three before it would be in too (it comes before their response).
  await app.inject({ url: '/x', headers: { 'x-tenant': 'acme' } })
  await until(() => calls.length >= 2, { what: 'the acme request after them is reverted' })
  assert.deepEqual(calls, ['bootstrap acme true', 'revert acme'], 'nothing bootstrapped the central, unknown and suspended requests')

  // app.tenancy.run bootstraps and reverts as well, the revert once its function settles.
  calls.length = 0
  await app.tenancy.run(acme, async () => { await aTurnLater(); calls.push('work') })
  assert.deepEqual(calls, ['bootstrap acme true', 'work', 'revert acme'])

  // Ten requests: ten of each.
  calls.length = 0
  await Promise.all(Array.from({ length: 10 }, async () => await app.inject({ url: '/x', headers: { 'x-tenant': 'acme' } })))
  await until(() => calls.length === 20, { what: 'ten requests bootstrapped and reverted' })
  assert.equal(calls.filter((c) => c.startsWith('bootstrap')).length, 10)
  assert.equal(calls.filter((c) => c.startsWith('revert')).length, 10)

  // A bootstrapper that throws fails the request, and those before it are reverted.
  const failing: Bootstrapper = { name: 'failing', bootstrap () { throw new Error('cannot bootstrap') }, revert () { calls.push('revert failing') } }
  const other = await buildApp(t, { identification: ['header'], bootstrappers: [audit, failing] }, (a) => { a.get('/x', async () => ({ ok: true })) }, central)
  calls.length = 0
  const failed = await other.app.inject({ url: '/x', headers: { 'x-tenant': 'acme' } })
  assert.equal(failed.statusCode, 500)
  assert.match(failed.json().message, /cannot bootstrap/)
  assert.deepEqual(calls, ['bootstrap acme true', 'revert acme'])
})

test('renaming a tenant keeps its cache prefix and its storage folder', async (t) => {
  const root = storageRoot(t)
  const { app } = await buildApp(t, { storageRoot: root, identification: ['header'] }, (a) => {
    a.get('/where', async (request) => {
      const scope = a.tenancy.scope()
      return { identifier: request.tenant?.identifier, storage: scope?.storage?.root, cache: scope?.cacheKey('x'), database: a.tenancy.tenants.databaseName(request.tenant as Tenant) }
    })
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const before = (await app.inject({ url: '/where', headers: { 'x-tenant': 'acme' } })).json()
  assert.deepEqual(before, { identifier: 'acme', storage: resolve(root, acme.resourceKey as string), cache: `tenant:${acme.key}:x`, database: app.tenancy.tenants.databaseName(acme) })

  await rename(app, acme.key, 'initech')
  const after = (await app.inject({ url: '/where', headers: { 'x-tenant': 'initech' } })).json()
  assert.deepEqual(after, { ...before, identifier: 'initech' })
  assert.equal((await app.inject({ url: '/where', headers: { 'x-tenant': 'acme' } })).json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  const renamed = await app.tenancy.tenants.find('initech')
  assert.equal(renamed?.key, acme.key)
  assert.equal(renamed?.resourceKey, acme.resourceKey)
})
