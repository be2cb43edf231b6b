import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../server/demo/embedded-postgres.js'
import { tenancyPlugin, type Tenant } from '../server/index.js'
import { freshCentral, sql, urlFor } from './helpers/database.js'
import { buildApp } from './helpers/app.js'
import { makeTenants } from './helpers/tenants.js'
import { until } from './helpers/poll.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

const UNAVAILABLE = {
  statusCode: 503,
  code: 'FST_TENANCY_DATABASE_UNAVAILABLE',
  error: 'Service Unavailable',
  message: 'The database is not available right now; try again in a moment.'
}

/** Log lines kept as parsed JSON. */
function keptLog (): { lines: Array<Record<string, any>>, stream: { write: (line: string) => void } } {
  const lines: Array<Record<string, any>> = []
  return { lines, stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } }
}

/** Something only the server side knows, which no response body may carry. */
function internals (server: EmbeddedServer, prefix: string, central: string): RegExp {
  return new RegExp([String(server.port), '127\\.0\\.0\\.1', 'localhost', prefix, central, 'ECONN', 'ETIMEDOUT', '57P0', '08006', 'terminat', 'select ', 'postgres', 'knex', 'pg_'].join('|'), 'i')
}

test('PostgreSQL stopped and started again under 32 requests in flight over 50 tenants: only 200 and 503 FST_TENANCY_DATABASE_UNAVAILABLE with Retry-After, nothing internal in any body, every request answered, one warning per burst, recovery without a restart', { timeout: 600_000 }, async (t) => {
  // A server of this test's own: it is stopped and started again on the same port and data (thrown away after: no fsync).
  const dataDir = join('.tmp', `faults-pg-${process.pid}`)
  const port = await freePort()
  let server = await startEmbeddedPostgres({ dataDir, port, persistent: true, durable: false, reuseRunning: false })
  const central = await freshCentral(null, server.url)
  const log = keptLog()
  const app = Fastify({ logger: { level: 'warn', stream: log.stream } })
  let closed = false
  t.after(async () => {
    if (!closed) await app.close().catch(() => {})
    await server.stop().catch(() => {})
    await rm(dataDir, { recursive: true, force: true })
  })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    // Pools and waits sized for the fleet on a loaded machine, so every 503 here is the fault's, not FST_TENANCY_BUSY of a full budget.
    database: { url: central.url, prefix: central.prefix, maxConnections: 110, poolSize: 2, poolCap: 64, acquireTimeoutMs: 20_000 },
    identification: ['subdomain'],
    centralDomains: ['example.com'],
    provisioning: { spares: 0 },
    // Short, so the cache is the central database's most of the time (lookups fail too) and the listener comes back soon.
    cache: { ttlMs: 200, missTtlMs: 200, heartbeatMs: 1000 }
  })
  app.get('/projects', async (request) => ({ tenant: request.tenant?.identifier, count: (await request.tenantEm.find(ProjectEntity, {})).length }))
  await app.ready()
  const tenants = await makeTenants(app, 50, 'f')

  const statuses = new Map<string, number>()
  const leaks: string[] = []
  const wrong: string[] = []
  const hidden = internals(server, central.prefix, central.name)
  let sent = 0
  let answered = 0
  let stopping = false
  let i = 0
  let phase = ' before'
  const recentOk = new Map<string, number>()
  const ask = async (tenant: Tenant): Promise<void> => {
    sent++
    const res = await app.inject({ url: '/projects', headers: { host: `${tenant.identifier}.example.com` } })
    answered++
    const key = `${res.statusCode}${res.statusCode === 503 ? ` ${String(res.json().code)}` : ''}${phase}`
    statuses.set(key, (statuses.get(key) ?? 0) + 1)
    if (hidden.test(res.body)) leaks.push(`${res.statusCode} ${res.body}`)
    if (res.statusCode === 200) {
      if (res.json().tenant !== tenant.identifier) wrong.push(`${tenant.identifier}: ${res.body}`)
      recentOk.set(tenant.identifier, Date.now())
    } else if (res.statusCode === 503) {
      try { assert.deepEqual(res.json(), UNAVAILABLE) } catch { wrong.push(`503 ${res.body}`) }
      if (res.headers['retry-after'] !== '5') wrong.push(`503 without Retry-After: ${JSON.stringify(res.headers)}`)
    } else {
      wrong.push(`${res.statusCode} ${res.body}`)
    }
  }
  const workers = Array.from({ length: 32 }, async () => {
    while (!stopping) await ask(tenants[(i++ * 13) % tenants.length] as Tenant)
  })

  try {
    // Warm: every tenant answered.
    await until(() => recentOk.size, { is: (n) => n === tenants.length, timeoutMs: 60_000, what: `every one of ${tenants.length} tenants answers before the fault` })

    phase = ' down'
    await server.stop()
    await until(async () => (statuses.get('503 FST_TENANCY_DATABASE_UNAVAILABLE down') ?? 0) >= 64, { timeoutMs: 60_000, what: 'requests get 503 while PostgreSQL is down' })
    const downAt = Date.now()
    server = await startEmbeddedPostgres({ dataDir, port, persistent: true, durable: false, reuseRunning: false })
    const upAt = Date.now()
    phase = ' up'
    // Recovery: every tenant answers 200 again, from this same app.
    recentOk.clear()
    await until(() => recentOk.size, { is: (n) => n === tenants.length, timeoutMs: 60_000, what: `every one of ${tenants.length} tenants answers again` })
    t.diagnostic(`down for ${upAt - downAt} ms; all 50 tenants back ${Date.now() - upAt} ms after the start`)
  } finally {
    stopping = true
    await Promise.all(workers)
  }
  t.diagnostic(`statuses ${JSON.stringify([...statuses])}, ${sent} sent`)
  assert.equal(answered, sent, 'every request was answered')
  assert.deepEqual(wrong, [], 'only 200 with its own tenant, or 503 with the code and Retry-After')
  assert.deepEqual(leaks.slice(0, 5), [], 'no body names a host, port, database, SQL or driver code')
  assert.deepEqual([...new Set([...statuses.keys()].map((k) => k.split(' ').slice(0, 2).join(' ').replace(/^200.*/, '200')))].sort(), ['200', '503 FST_TENANCY_DATABASE_UNAVAILABLE'])

  // The log: a warning per fault and burst with the detail, no stack per request.
  const warnings = log.lines.filter((l) => /is unavailable/.test(String(l.msg)))
  t.diagnostic(`fault warnings: ${warnings.map((w) => `${String(w.database)} ${String(w.fault?.code)}`).join('; ')}`)
  const failed = [...statuses].filter(([k]) => k.startsWith('503')).reduce((n, [, v]) => n + v, 0)
  assert.ok(warnings.length >= 1 && warnings.length <= 6, `a few warnings for ${failed} failed requests, not one each (${warnings.length})`)
  assert.ok(warnings.every((w) => typeof w.fault?.detail === 'string' && w.fault.detail.length > 0), 'with the detail')
  const errors = log.lines.filter((l) => l.level >= 50)
  assert.deepEqual(errors.map((l) => String(l.msg)).slice(0, 5), [], 'no error line (and so no stack) per failed request')
  // The change listener's loss: a warning for the outage with its fault, not one (with a stack) per reconnect attempt.
  const listener = log.lines.filter((l) => l.level >= 40 && /central change listener/.test(String(l.msg)))
  assert.ok(listener.length >= 1 && listener.length <= 2, `one listener warning for the outage, not one per attempt: ${listener.length}`)
  assert.ok(listener.every((l) => l.err === undefined && typeof l.fault?.kind === 'string'), JSON.stringify(listener[0]))
  await app.close()
  closed = true
})

test('a tenant database host that refuses the login answers 503 with the code and nothing internal, and serves again once the login works', async (t) => {
  const { app: setup, central } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'], provisioning: { spares: 0 }, cache: { listen: false } })
  const acme = await setup.tenancy.create({ identifier: 'acme' })
  const role = `ft_login_${central.prefix.replace(/_$/, '')}`
  await sql(urlFor('postgres'), `create role ${role} login password 'right-password'`)
  t.after(async () => { await sql(urlFor('postgres'), `drop role if exists ${role}`).catch(() => {}) })
  const hostUrl = new URL(urlFor('postgres'))
  hostUrl.username = role
  hostUrl.password = 'right-password'
  const log = keptLog()
  const app = Fastify({ logger: { level: 'warn', stream: log.stream } })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url: central.url, prefix: central.prefix, hosts: { default: hostUrl.toString() } },
    identification: ['subdomain'],
    centralDomains: ['example.com'],
    provisioning: { spares: 0 },
    cache: { listen: false }
  })
  app.get('/one', async (request) => ({ tenant: request.tenant?.identifier, one: (await request.tenantEm.execute('select 1 as one'))[0]?.one }))
  await app.ready()
  const ask = async (): Promise<{ status: number, body: string, retry: unknown }> => {
    const res = await app.inject({ url: '/one', headers: { host: 'acme.example.com' } })
    return { status: res.statusCode, body: res.body, retry: res.headers['retry-after'] }
  }
  assert.deepEqual(JSON.parse((await ask()).body), { tenant: 'acme', one: 1 })

  await sql(urlFor('postgres'), `alter role ${role} password 'changed-password'`)
  // Connections already open keep working; the next new one is refused.
  await sql(urlFor('postgres'), `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`)
  const refused: Array<{ status: number, body: string, retry: unknown }> = []
  for (let n = 0; n < 10; n++) refused.push(await ask())
  assert.ok(refused.some((r) => r.status === 503), JSON.stringify(refused.slice(0, 3)))
  for (const r of refused.filter((x) => x.status !== 200)) {
    assert.deepEqual(JSON.parse(r.body), UNAVAILABLE)
    assert.equal(r.retry, '5')
    assert.doesNotMatch(r.body, new RegExp(`${role}|password|28P01|${acme.key.replaceAll('-', '')}`))
  }
  const warnings = log.lines.filter((l) => /is unavailable/.test(String(l.msg)))
  assert.equal(warnings.length, 1, 'one warning for the burst')
  assert.equal(warnings[0]?.fault?.code, '28P01')
  assert.equal(warnings[0]?.fault?.kind, 'login-refused')

  await sql(urlFor('postgres'), `alter role ${role} password 'right-password'`)
  await until(async () => (await ask()).status === 200, { timeoutMs: 10_000, what: 'serves again by itself' })
})

test('a tenant whose database is missing answers 503 with the code, without its database name', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'], provisioning: { spares: 0 }, cache: { listen: false } }, (app: FastifyInstance) => {
    app.get('/projects', async (request) => ({ count: (await request.tenantEm.find(ProjectEntity, {})).length }))
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const database = app.tenancy.tenants.databaseName(acme)
  await sql(urlFor('postgres'), `drop database "${database}" with (force)`)
  const res = await app.inject({ url: '/projects', headers: { host: 'acme.example.com' } })
  assert.equal(res.statusCode, 503)
  assert.deepEqual(res.json(), UNAVAILABLE)
  assert.equal(res.headers['retry-after'], '5')
  assert.doesNotMatch(res.body, new RegExp(`${database}|${central.prefix}|3D000`))
})

test('a schema tenant whose schema is gone answers 503 with the code, without the schema name or SQL, logged once; a route of a live tenant that names a missing table still gets its own 500', async (t) => {
  const log = keptLog()
  const central = await freshCentral(t)
  const app = Fastify({ logger: { level: 'warn', stream: log.stream } })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    strategy: 'schema',
    database: { url: central.url, prefix: central.prefix },
    identification: ['subdomain'],
    centralDomains: ['example.com'],
    provisioning: { spares: 0 },
    cache: { listen: false }
  })
  app.get('/projects', async (request) => ({ count: (await request.tenantEm.find(ProjectEntity, {})).length }))
  app.get('/typo', async (request) => await request.tenantEm.getConnection().execute('select * from no_such_table'))
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await app.tenancy.create({ identifier: 'globex' })
  const schema = app.tenancy.tenants.databaseName(acme)
  assert.equal((await app.inject({ url: '/projects', headers: { host: 'acme.example.com' } })).statusCode, 200)
  await sql(central.url, `drop schema "${schema}" cascade`)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/projects', headers: { host: 'acme.example.com' } })
    assert.equal(res.statusCode, 503)
    assert.deepEqual(res.json(), UNAVAILABLE)
    assert.equal(res.headers['retry-after'], '5')
    assert.doesNotMatch(res.body, new RegExp(`${schema}|${central.prefix}|42P01|select`, 'i'))
  }
  const warnings = log.lines.filter((l) => l.level === 40 && /database/i.test(String(l.msg)))
  assert.equal(warnings.length, 1, JSON.stringify(log.lines.map((l) => l.msg)))
  // An app's own mistake in a tenant whose schema is there stays the app's error.
  const typo = await app.inject({ url: '/typo', headers: { host: 'globex.example.com' } })
  assert.equal(typo.statusCode, 500)
  assert.notEqual(typo.json().code, 'FST_TENANCY_DATABASE_UNAVAILABLE')
})
