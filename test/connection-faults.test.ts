import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { freePort } from '../server/demo/embedded-postgres.js'
import { tenancyPlugin } from '../server/index.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

/** What must never reach a client: addresses, database names, SQL, driver words. */
function assertNothingInternal (body: string, databaseName: string): void {
  assert.doesNotMatch(body, /127\.0\.0\.1|localhost|ECONNREFUSED|password|authentication|select |3D000|28P01|57P01/i)
  assert.ok(!body.includes(databaseName), `the body names the database: ${body}`)
}

test('a request waits at most acquireTimeoutMs for connections in all, however many of its statements wait', { timeout: 120_000 }, async (t) => {
  // Time is the subject here: a hold keeps the tenant's one connection for 1 s of real time, spending that much of the
  // request's 1.5 s of waiting (the pool's acquire timeout runs on real timers, not on the clock option).
  const holdFor = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
  const { app } = await buildApp(t, { identification: ['header'], provisioning: { spares: 0 }, database: { maxConnections: 4, poolSize: 1, acquireTimeoutMs: 1500 } }, (a) => {
    // Work of the route itself keeps the tenant's one connection for 1 s, twice; each read after it waits for the connection.
    a.get('/two-waits', async (request) => {
      /** Keeps the connection for 1 s; `taken` settles once the hold has it (a latch, not a guess at how long that takes). */
      const hold = (): { taken: Promise<void>, done: Promise<void> } => {
        let took!: () => void
        const taken = new Promise<void>((resolve) => { took = resolve })
        const done = request.tenantEm.fork().transactional(async (em) => { await em.count(ProjectEntity, {}); took(); await holdFor(1000) })
        return { taken: Promise.race([taken, done]), done }
      }
      const waits: number[] = []
      const read = async (): Promise<void> => {
        const started = performance.now()
        try {
          await request.tenantEm.fork().count(ProjectEntity, {})
        } finally {
          waits.push(performance.now() - started)
        }
      }
      try {
        const first = hold()
        await first.taken
        await read()
        await first.done
        const second = hold()
        await second.taken
        await read()
        await second.done
        return { waits }
      } catch (error) {
        return { waits, code: (error as { code?: string }).code }
      }
    })
  })
  await app.tenancy.create({ identifier: 'acme' })
  const res = (await app.inject({ url: '/two-waits', headers: { 'x-tenant': 'acme' } })).json() as { waits: number[], code?: string }
  // The first read waited about a second of the 1.5 s; the second could wait only what was left.
  assert.equal(res.code, 'FST_TENANCY_BUSY', JSON.stringify(res))
  assert.equal(res.waits.length, 2, JSON.stringify(res))
  const [firstWait, secondWait] = res.waits as [number, number]
  assert.ok(firstWait >= 900, `the first read waited for the first hold (${JSON.stringify(res)})`)
  assert.ok(secondWait < 900, `the second read waited ${Math.round(secondWait)} ms, more than the 1.5 s bound left it (${JSON.stringify(res)})`)
})

test('a tenant whose database is missing gets 503 FST_TENANCY_DATABASE_UNAVAILABLE with Retry-After, nothing internal in the body, and one warning in the log', async (t) => {
  const central = await freshCentral(t)
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: new Writable({ write (chunk, _e, done) { lines.push(JSON.parse(chunk.toString())); done() } }) } })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['header'], provisioning: { spares: 0 }, cache: { listen: false } })
  app.get('/projects', async (request) => await request.tenantEm.find(ProjectEntity, {}))
  app.get('/raw', async (request) => await request.tenantEm.getKnex().raw('select 1'))
  await app.ready()
  const gone = await app.tenancy.create({ identifier: 'gone' })
  const name = app.tenancy.tenants.databaseName(gone)
  await sql(central.url, `drop database "${name}" with (force)`)
  for (let i = 0; i < 5; i++) {
    for (const url of ['/projects', '/raw']) {
      const res = await app.inject({ url, headers: { 'x-tenant': 'gone' } })
      assert.equal(res.statusCode, 503, res.body)
      assert.equal(res.json().code, 'FST_TENANCY_DATABASE_UNAVAILABLE')
      assert.match(String(res.headers['retry-after']), /^[1-9][0-9]*$/)
      assertNothingInternal(res.body, name)
    }
  }
  const warnings = lines.filter((l) => l.level === 40 && String(l.msg).includes('is unavailable'))
  assert.equal(warnings.length, 1, 'one warning for the burst')
  assert.equal((warnings[0]?.fault as { code?: string } | undefined)?.code, '3D000', 'with the cause')
})

/** An app with a tenant whose database host is `url` (another server, or the same one with other credentials). */
async function appWithHost (t: Parameters<typeof buildApp>[0], url: (central: string) => string): Promise<{ app: FastifyInstance, name: string }> {
  const central = await freshCentral(t)
  const { app } = await buildApp(t, { identification: ['header'], provisioning: { spares: 0 }, cache: { listen: false }, database: { hosts: { default: central.url, other: url(central.url) }, maxConnections: 4 } }, (a) => {
    a.get('/projects', async (request) => await request.tenantEm.find(ProjectEntity, {}))
  }, central)
  const tenant = await app.tenancy.create({ identifier: 'moved' })
  // The tenant now lives on the other host (as if it had been moved there by hand).
  await sql(central.url, "update tenancy.tenants set database_host = 'other' where key = $1", [tenant.key])
  app.tenancy.invalidate()
  return { app, name: app.tenancy.tenants.databaseName(tenant) }
}

test('a database server that refuses connections, and a login it refuses, give 503 FST_TENANCY_DATABASE_UNAVAILABLE with nothing internal in the body', async (t) => {
  const port = await freePort()
  for (const make of [
    (central: string) => { const u = new URL(central); u.port = String(port); return u.toString() },
    (central: string) => { const u = new URL(central); u.password = 'not-the-password'; return u.toString() }
  ]) {
    const { app, name } = await appWithHost(t, make)
    const res = await app.inject({ url: '/projects', headers: { 'x-tenant': 'moved' } })
    assert.equal(res.statusCode, 503, res.body)
    assert.equal(res.json().code, 'FST_TENANCY_DATABASE_UNAVAILABLE')
    assert.ok(res.headers['retry-after'] !== undefined)
    assertNothingInternal(res.body, name)
  }
})

test('a tenant statement whose connection the administrator terminates (57P01) gets 503 FST_TENANCY_DATABASE_UNAVAILABLE, not its SQL', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header'], provisioning: { spares: 0 }, cache: { listen: false } }, (a) => {
    a.get('/slow', async (request) => await request.tenantEm.execute('select pg_sleep(30), 42 as answer'))
  })
  const tenant = await app.tenancy.create({ identifier: 'acme' })
  const name = app.tenancy.tenants.databaseName(tenant)
  const pending = app.inject({ url: '/slow', headers: { 'x-tenant': 'acme' } })
  await until(async () => (await sql(central.url, "select 1 from pg_stat_activity where datname = $1 and query like '%pg_sleep%' and state = 'active'", [name])).length > 0, { what: 'the statement is running' })
  await sql(central.url, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query like '%pg_sleep%'", [name])
  const res = await pending
  assert.equal(res.statusCode, 503, res.body)
  assert.equal(res.json().code, 'FST_TENANCY_DATABASE_UNAVAILABLE')
  assertNothingInternal(res.body, name)
  assert.doesNotMatch(res.body, /pg_sleep/)
})
