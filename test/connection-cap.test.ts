import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql } from './helpers/database.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { tenancyRuntime } from '../server/tenancy.js'
import { repeat } from './helpers/poll.js'

async function tenantConnections (prefix: string): Promise<number> {
  const rows = await sql<{ n: number }>(serverUrl(), "select count(*)::int as n from pg_stat_activity where starts_with(datname, $1) and not starts_with(datname, $2) and backend_type = 'client backend'", [prefix, prefix + 'template'])
  return Number(rows[0]?.n ?? 0)
}

test('with the pool cap at 5, 40 tenants in turn never hold more than cap × pool size connections, and no request fails', { timeout: 120_000 }, async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header'], database: { poolCap: 5, poolSize: 2 } }, (a) => {
    a.get('/count', async (request) => ({ n: await request.tenantEm.count(ProjectEntity, {}) }))
  })
  const tenants: Tenant[] = []
  for (let i = 0; i < 40; i++) tenants.push(await app.tenancy.create({ identifier: `cap${i}` }))
  await tenancyRuntime(app.tenancy).idle()
  let peak = 0
  const sampler = repeat(async () => { peak = Math.max(peak, await tenantConnections(central.prefix)) }, { everyMs: 5 })
  for (let round = 0; round < 2; round++) {
    for (const tenant of tenants) {
      const res = await app.inject({ url: '/count', headers: { 'x-tenant': tenant.identifier } })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), { n: 0 })
      peak = Math.max(peak, await tenantConnections(central.prefix))
      assert.ok(app.tenancy.stats().open <= 5)
    }
  }
  await sampler.stop()
  assert.ok(peak <= 10, `at most 5 pools × 2 connections were open, saw ${peak}`)
  assert.ok(peak >= 1, 'the sampler saw the connections')
  assert.ok(app.tenancy.stats().opened >= 40, 'pools were closed and opened again as tenants came in turn')
})

test('a pool evicted while a request uses it stays open until that request ends', { timeout: 60_000 }, async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let inside = 0
  let bothInside!: () => void
  const entered = new Promise<void>((resolve) => { bothInside = resolve })
  const { app } = await buildApp(t, { identification: ['header'], database: { poolCap: 2, poolSize: 1 } }, (a) => {
    a.get('/slow', async (request) => {
      const em = request.tenantEm
      await em.count(ProjectEntity, {})
      if (++inside === 2) bothInside()
      await gate
      return { titles: (await em.find(ProjectEntity, {})).map((p) => p.title) }
    })
    a.get('/quick', async (request) => ({ n: await request.tenantEm.count(ProjectEntity, {}) }))
  })
  const busy: Tenant[] = []
  for (const identifier of ['slow1', 'slow2']) {
    const tenant = await app.tenancy.create({ identifier })
    await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: `kept-${identifier}` }); await scope.em.flush() })
    busy.push(tenant)
  }
  const others: Tenant[] = []
  for (let i = 0; i < 3; i++) others.push(await app.tenancy.create({ identifier: `other${i}` }))
  // Both pools of the cap are busy with a slow request each.
  const pending = busy.map(async (tenant) => await app.inject({ url: '/slow', headers: { 'x-tenant': tenant.identifier } }))
  await entered
  let draining = 0
  try {
    for (const other of others) {
      assert.equal((await app.inject({ url: '/quick', headers: { 'x-tenant': other.identifier } })).statusCode, 200)
      draining = Math.max(draining, app.tenancy.stats().draining)
    }
  } finally {
    release()
  }
  assert.ok(draining >= 1, `a busy pool was evicted but is still draining (${JSON.stringify(app.tenancy.stats())})`)
  const results = await Promise.all(pending)
  assert.deepEqual(results.map((r) => [r.statusCode, r.json()]), [[200, { titles: ['kept-slow1'] }], [200, { titles: ['kept-slow2'] }]])
  assert.equal(app.tenancy.stats().draining, 0, 'it closed once its request ended')
  assert.ok(app.tenancy.stats().open <= 2)
})
