import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { randomFor } from './helpers/random.js'

const TENANTS = 50
const REQUESTS = 5000

const STRATEGIES = ['database', 'shared'] as const

for (const strategy of STRATEGIES) {
  test(`[${strategy}] 5,000 interleaved requests over 50 tenants each see only their own tenant and rows`, { timeout: 180_000 }, async (t) => {
    // Seeded: requests interleave the same way on every run.
    const random = randomFor(t)
    // 60 pools of 2 as before the connection budget existed: this test is about isolation, not waiting for a connection
    // (250 requests in flight on a loaded 2-core machine can wait longer than the default 5 s bound; connection-faults.test.ts tests that bound).
    const { app } = await buildApp(t, { strategy, identification: ['header'], database: { poolCap: 60, poolSize: 2, maxConnections: 120, acquireTimeoutMs: 60_000 } }, (a) => {
      a.get('/rows', async (request) => {
        const before = await request.tenantEm.find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
        // Other requests run here, for 1 to 4 turns of the event loop; the context must survive the wait.
        for (let turns = 1 + Math.floor(random() * 4); turns > 0; turns--) await new Promise((resolve) => setImmediate(resolve))
        const after = await request.tenantEm.fork().find(ProjectEntity, {}, { orderBy: { id: 'asc' } })
        return {
          tenant: request.tenant?.identifier,
          current: a.tenancy.current()?.identifier,
          before: before.map((p) => p.title),
          after: after.map((p) => p.title)
        }
      })
    })
    const tenants: Tenant[] = []
    for (let i = 0; i < TENANTS; i++) tenants.push(await app.tenancy.create({ identifier: `t${i}` }))
    for (const tenant of tenants) {
      await app.tenancy.run(tenant, async (scope) => {
        scope.em.create(ProjectEntity, { title: `${tenant.identifier}-a` })
        scope.em.create(ProjectEntity, { title: `${tenant.identifier}-b` })
        await scope.em.flush()
      })
    }
    const order = Array.from({ length: REQUESTS }, (_, i) => tenants[(i * 7919) % TENANTS] as Tenant)
    let checked = 0
    for (let start = 0; start < REQUESTS; start += 250) {
      const batch = order.slice(start, start + 250)
      const responses = await Promise.all(batch.map(async (tenant) => ({ tenant, res: await app.inject({ url: '/rows', headers: { 'x-tenant': tenant.identifier } }) })))
      for (const { tenant, res } of responses) {
        assert.equal(res.statusCode, 200, res.body)
        const body = res.json()
        const own = [`${tenant.identifier}-a`, `${tenant.identifier}-b`]
        assert.deepEqual(body, { tenant: tenant.identifier, current: tenant.identifier, before: own, after: own })
        checked++
      }
    }
    assert.equal(checked, REQUESTS)
  })

  test(`[${strategy}] a timer started in a tenant request keeps that tenant; code outside any request has none`, async (t) => {
    const seen: Array<string | null> = []
    let fired!: () => void
    const done = new Promise<void>((resolve) => { fired = resolve })
    let globexServed = false
    const { app } = await buildApp(t, { strategy, identification: ['header'] }, (a) => {
      a.get('/later', async () => {
        // The timer is the subject. It sets itself again until globex's request has run,
        // so the tenant is read after another tenant's request, whatever the timing.
        const fire = (): void => {
          if (!globexServed) { setTimeout(fire, 5); return }
          seen.push(a.tenancy.current()?.identifier ?? null)
          fired()
        }
        setTimeout(fire, 5)
        return { ok: true }
      })
    })
    await app.tenancy.create({ identifier: 'acme' })
    await app.tenancy.create({ identifier: 'globex' })
    assert.equal((await app.inject({ url: '/later', headers: { 'x-tenant': 'acme' } })).statusCode, 200)
    // globex's request runs while acme's timer is still waiting.
    assert.equal((await app.inject({ url: '/rows', headers: { 'x-tenant': 'globex' } })).statusCode, 404)
    globexServed = true
    await done
    assert.deepEqual(seen, ['acme'])
    assert.equal(app.tenancy.current(), null)
  })

  test(`[${strategy}] run() nests and gives back the previous tenant, whether the inner function returns or throws`, async (t) => {
    const { app } = await buildApp(t, { strategy, identification: ['header'] })
    const a = await app.tenancy.create({ identifier: 'acme' })
    const b = await app.tenancy.create({ identifier: 'globex' })
    const trail: Array<string | null> = []
    await app.tenancy.run(a, async () => {
      trail.push(app.tenancy.current()?.identifier ?? null)
      await app.tenancy.run(b, async () => { trail.push(app.tenancy.current()?.identifier ?? null) })
      trail.push(app.tenancy.current()?.identifier ?? null)
      await assert.rejects(app.tenancy.run(b, async () => { trail.push(app.tenancy.current()?.identifier ?? null); throw new Error('boom') }), /boom/)
      trail.push(app.tenancy.current()?.identifier ?? null)
    })
    trail.push(app.tenancy.current()?.identifier ?? null)
    assert.deepEqual(trail, ['acme', 'globex', 'acme', 'globex', 'acme', null])
  })
}
