import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { defineEntity, p } from '@mikro-orm/core'
import { buildApp } from './helpers/app.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { mapLimit } from '../server/support/map-limit.js'
import { tenancyPlugin, type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { tenantEntities } from './helpers/tenant-schema.js'
import Fastify from 'fastify'
import { tenancyRuntime } from '../server/tenancy.js'

/** Routes that read the tenant's projects through the ORM, through raw SQL in a transaction, and through raw SQL alone. */
function routes (app: FastifyInstance): void {
  app.get('/orm', async (request) => ({ titles: (await request.tenantEm.find(ProjectEntity, {}, { orderBy: { title: 'asc' } })).map((p) => p.title) }))
  app.get('/raw-in-transaction', async (request) => await request.tenantEm.transactional(async (em) => {
    const rows = await em.execute('select title from projects order by title')
    return { titles: rows.map((r) => r.title as string) }
  }))
  app.get('/raw', async (request) => ({ titles: (await request.tenantEm.execute('select title from projects order by title')).map((r) => r.title as string) }))
  app.get('/connection', async (request) => {
    const conn = request.tenantEm.getConnection()
    const rows = await conn.execute('select current_schema() as schema, (select count(*)::int from projects) as n', [], 'all')
    return rows[0]
  })
}

/** Makes `count` schema tenants, each with one project titled by its identifier (written through its own EntityManager). */
async function schemaTenants (app: FastifyInstance, count: number, tag: string): Promise<Tenant[]> {
  return await mapLimit(Array.from({ length: count }, (_, i) => i), 4, async (i) => {
    const tenant = await app.tenancy.create({ identifier: `${tag}${i}` })
    await app.tenancy.run(tenant, async (scope) => {
      scope.em.create(ProjectEntity, { title: tenant.identifier })
      await scope.em.flush()
    })
    return tenant
  })
}

/** Sends `total` requests spread round-robin over the tenants, `inFlight` at a time; returns how many answered another tenant's data. */
async function interleave (
  app: FastifyInstance, tenants: Tenant[], urls: string[], total: number, inFlight: number
): Promise<{ wrong: string[], statuses: Map<number, number> }> {
  const wrong: string[] = []
  const statuses = new Map<number, number>()
  await mapLimit(Array.from({ length: total }, (_, i) => i), inFlight, async (i) => {
    const tenant = tenants[(i * 7) % tenants.length] as Tenant
    const url = urls[i % urls.length] as string
    const res = await app.inject({ url, headers: { 'x-tenant': tenant.identifier } })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode === 200 && JSON.stringify(res.json().titles) !== JSON.stringify([tenant.identifier])) wrong.push(`${tenant.identifier} ${url}: ${res.body}`)
  })
  return { wrong, statuses }
}

test('schema tenants share one pool per host, and each request sees only its own schema through the ORM and raw SQL', { timeout: 240_000 }, async (t) => {
  const { app } = await buildApp(t, { strategy: 'schema', identification: ['header'], cache: { listen: false }, database: { maxConnections: 6 } }, routes)
  const tenants = await schemaTenants(app, 24, 'sch')
  const { wrong, statuses } = await interleave(app, tenants, ['/orm', '/raw-in-transaction', '/raw'], 1200, 24)
  assert.deepEqual(wrong, [])
  assert.deepEqual([...statuses], [[200, 1200]])
  const stats = app.tenancy.stats()
  assert.equal(stats.open, 1, 'every schema tenant of the host used the same pool')
  assert.ok((stats.hosts.default?.peak ?? 0) <= 6, `the host's budget held: ${JSON.stringify(stats.hosts)}`)

  const conn = await app.inject({ url: '/connection', headers: { 'x-tenant': 'sch3' } })
  assert.deepEqual(conn.json(), { schema: app.tenancy.tenants.databaseName(tenants[3] as Tenant), n: 1 })
})

test('schema tenants through PgBouncer in transaction mode stay apart', { timeout: 240_000 }, async (t) => {
  const { central } = await buildApp(t, { identification: ['header'], cache: { listen: false } })
  // Each lifecycle operation holds a transaction-level advisory lock (one server connection) while it works:
  // PgBouncer's pool must be larger than the creates running at once, or they starve each other.
  const bouncer = await startPgBouncer(central.url, { mode: 'transaction', poolSize: 20 })
  t.after(async () => { await bouncer.stop() })
  const { app } = await buildApp(t, {
    strategy: 'schema',
    identification: ['header'],
    cache: { listen: false },
    database: { url: bouncer.url(central.url), pooler: 'transaction', maxConnections: 8 }
  }, routes, central)
  const tenants = await schemaTenants(app, 12, 'pgb')
  const { wrong, statuses } = await interleave(app, tenants, ['/orm', '/raw-in-transaction', '/raw'], 900, 16)
  assert.deepEqual(wrong, [])
  assert.deepEqual([...statuses], [[200, 900]])
  const pools = await bouncer.show('pools')
  assert.ok(pools.some((p) => p.database === central.name && p.pool_mode === 'transaction'), 'the requests went through PgBouncer')
})

test('a schema tenant\'s search_path never outlives its statement\'s transaction', { timeout: 120_000 }, async (t) => {
  const { app } = await buildApp(t, { strategy: 'schema', identification: ['header'], cache: { listen: false }, database: { maxConnections: 1 } }, routes)
  const [a] = await schemaTenants(app, 1, 'sp') as [Tenant]
  const schema = app.tenancy.tenants.databaseName(a)
  const inside = await app.tenancy.run(a, async (scope) => await scope.em.getConnection().execute('show search_path', [], 'all'))
  assert.deepEqual(inside, [{ search_path: `"${schema}", pg_temp` }], 'the tenant\'s statement runs with its schema as the search_path, temporary tables last')
  assert.equal((await app.inject({ url: '/raw-in-transaction', headers: { 'x-tenant': a.identifier } })).statusCode, 200)
  // The host's one connection ran the tenant's transactions; the session itself never took the schema.
  const lease = tenancyRuntime(app.tenancy).connections.lease(app.tenancy.tenants.target(a))
  try {
    const session = await lease.orm.em.getConnection().execute('show search_path', [], 'all')
    assert.equal(session.length, 1)
    assert.doesNotMatch(JSON.stringify(session), new RegExp(schema))
    assert.equal(app.tenancy.stats().hosts.default?.peak, 1, 'it was the same single connection')
  } finally {
    lease.release()
  }
})

test('the plugin refuses pooling configurations known to leak', async () => {
  const url = 'postgres://u:p@127.0.0.1:1/none'
  const cases: Array<[object, RegExp]> = [
    [{ database: { url, pooler: 'transaction' } }, /cache\.listen/],
    [{ database: { url: url + '?options=-c%20search_path%3Dx', pooler: 'transaction', directUrl: url } }, /session settings/],
    [{ database: { url, pooler: 'statement' } }, /database\.pooler/],
    [{ database: { url }, strategy: 'schema', tenantEntities: [...tenantEntities, defineEntity({ name: 'Pinned', schema: 'public', properties: { id: p.integer().primary() } })] }, /Pinned.*schema "public"/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await assert.rejects(async () => { await app.register(tenancyPlugin, options as any); await app.ready() }, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'FST_TENANCY_INVALID_OPTION')
      assert.match(error.message, message)
      return true
    })
    await app.close().catch(() => {})
  }
})
