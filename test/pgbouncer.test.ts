import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { makeTenants } from './helpers/tenants.js'
import { mapLimit } from '../server/support/map-limit.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

function routes (app: FastifyInstance): void {
  // Reads through the ORM, writes and reads in a transaction, and raw SQL: every path a request can take to its database.
  app.get('/titles', async (request) => ({ titles: (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title) }))
  app.post('/touch', async (request) => await request.tenantEm.transactional(async (em) => {
    const project = await em.findOneOrFail(ProjectEntity, { title: request.tenant?.identifier as string })
    project.createdAt = new Date()
    await em.flush()
    const rows = await em.execute('select title from projects')
    return { titles: rows.map((r) => r.title as string) }
  }))
  app.get('/database', async (request) => ({ titles: [(await request.tenantEm.execute('select current_database() as db'))[0]?.db as string] }))
}

test('the database strategy through PgBouncer in transaction mode: 10,000 interleaved requests over 50 tenants, none answered with another tenant\'s data', { timeout: 600_000 }, async (t) => {
  const { app: setup, central } = await buildApp(t, { identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 } })
  const tenants = await makeTenants(setup, 50, 'pgb')
  for (const tenant of tenants) {
    await setup.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: tenant.identifier }); await scope.em.flush() })
  }
  const bouncer = await startPgBouncer(central.url, { mode: 'transaction', poolSize: 2 })
  t.after(async () => { await bouncer.stop() })
  const { app } = await buildApp(t, {
    identification: ['header'],
    database: { url: bouncer.url(central.url), directUrl: central.url, pooler: 'transaction', maxConnections: 30, poolSize: 2, poolCap: 20 }
  }, routes, central)

  const expected = (tenant: Tenant, url: string): string[] => url === '/database' ? [app.tenancy.tenants.databaseName(tenant)] : [tenant.identifier]
  const urls: Array<['GET' | 'POST', string]> = [['GET', '/titles'], ['POST', '/touch'], ['GET', '/database']]
  const wrong: string[] = []
  const statuses = new Map<number, number>()
  await mapLimit(Array.from({ length: 10_000 }, (_, i) => i), 32, async (i) => {
    const tenant = tenants[(i * 13) % tenants.length] as Tenant
    const [method, url] = urls[i % urls.length] as ['GET' | 'POST', string]
    const res = await app.inject({ method, url, headers: { 'x-tenant': tenant.identifier } })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode !== 200) return
    const titles = res.json().titles as string[]
    if (JSON.stringify(titles) !== JSON.stringify(expected(tenant, url))) wrong.push(`${tenant.identifier} ${url}: ${res.body}`)
  })
  t.diagnostic(`statuses ${JSON.stringify([...statuses])}; pools ${JSON.stringify(app.tenancy.stats().hosts)}`)
  assert.deepEqual(wrong, [], 'no request saw another tenant\'s data')
  assert.deepEqual([...statuses], [[200, 10_000]])
  const pools = (await bouncer.show('pools')).filter((p) => String(p.database).startsWith(central.prefix))
  assert.ok(pools.length >= 40, `the tenant databases were reached through PgBouncer (${pools.length} pools)`)
  assert.ok(pools.every((p) => p.pool_mode === 'transaction'))
})
