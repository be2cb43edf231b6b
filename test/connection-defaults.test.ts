import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql } from './helpers/database.js'
import { makeTenants } from './helpers/tenants.js'
import { mapLimit } from '../server/support/map-limit.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { randomFor } from './helpers/random.js'

const TENANTS = 100
const IN_FLIGHT = 64
const SECONDS = 30

test('with default options, 64 requests in flight over 100 tenant databases for 30 s: at least 99% answered 200, none with another tenant\'s data', { timeout: 600_000 }, async (t) => {
  const [row] = await sql<{ max: number }>(serverUrl(), "select current_setting('max_connections')::int as max")
  assert.equal(row?.max, 300, 'the test server allows 300 connections (test/run.ts)')
  const { app } = await buildApp(t, { identification: ['header'] }, (a) => {
    a.get('/projects', async (request) => ({ tenant: request.tenant?.identifier, titles: (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title) }))
  })
  const tenants = await makeTenants(app, TENANTS, 'd')
  await mapLimit(tenants, 8, async (tenant: Tenant) => {
    await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: `of-${tenant.identifier}` }); await scope.em.flush() })
  })
  const budget = app.tenancy.stats().hosts.default?.max ?? 0
  t.diagnostic(`maxConnections worked out from the server: ${budget}`)
  assert.ok(budget > IN_FLIGHT, `the worked-out budget (${budget}) leaves room for every request in flight`)
  // Seeded: the same tenants in the same order on every run.
  const random = randomFor(t, 24)
  const statuses = new Map<string, number>()
  const wrong: string[] = []
  const until = performance.now() + SECONDS * 1000
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < until) {
      const tenant = tenants[Math.floor(random() * TENANTS)] as Tenant
      const res = await app.inject({ url: '/projects', headers: { 'x-tenant': tenant.identifier } })
      const answer = res.statusCode === 200 ? '200' : `${res.statusCode} ${String(res.json().code)}`
      statuses.set(answer, (statuses.get(answer) ?? 0) + 1)
      if (res.statusCode === 200) {
        const body = res.json() as { tenant: string, titles: string[] }
        if (body.tenant !== tenant.identifier || JSON.stringify(body.titles) !== JSON.stringify([`of-${tenant.identifier}`])) wrong.push(`${tenant.identifier}: ${res.body}`)
      }
    }
  }))
  const total = [...statuses.values()].reduce((a, b) => a + b, 0)
  const ok = statuses.get('200') ?? 0
  t.diagnostic(`${total} requests in ${SECONDS} s: ${JSON.stringify([...statuses])}; stats ${JSON.stringify(app.tenancy.stats().hosts)}`)
  assert.deepEqual(wrong, [])
  assert.ok(total > IN_FLIGHT, 'requests were answered')
  assert.ok(ok / total >= 0.99, `${ok} of ${total} answered 200`)
})
