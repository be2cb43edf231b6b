import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp } from './helpers/app.js'
import { serverUrl } from './helpers/database.js'
import { connectionSampler, makeTenants } from './helpers/tenants.js'
import { mapLimit } from '../server/support/map-limit.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { randomFor, shuffle } from './helpers/random.js'
import { until, within } from './helpers/poll.js'

/** A route that reads through the tenant's EntityManager, and one that holds its connection (in a transaction) until `gate` opens. */
function routes (gate?: Promise<void>, entered?: () => void) {
  return (app: FastifyInstance): void => {
    app.get('/count', async (request) => ({ tenant: request.tenant?.identifier, n: await request.tenantEm.count(ProjectEntity, {}) }))
    app.get('/hold', async (request) => await request.tenantEm.transactional(async (em) => {
      await em.count(ProjectEntity, {})
      entered?.()
      await gate
      return { held: true }
    }))
  }
}

/** app.inject that fails the test instead of hanging. */
async function answered (app: FastifyInstance, identifier: string, url = '/count', withinMs = 30_000): Promise<LightMyRequestResponse> {
  return await within(app.inject({ url, headers: { 'x-tenant': identifier } }), { timeoutMs: withinMs, what: `the request for ${identifier} is answered` })
}

function assertBusy (res: LightMyRequestResponse): void {
  assert.equal(res.statusCode, 503, res.body)
  assert.equal(res.json().code, 'FST_TENANCY_BUSY')
  assert.match(String(res.headers['retry-after']), /^[1-9][0-9]*$/)
}

test('a burst of 64 concurrent requests over 500 tenants never holds more than 20 tenant connections; each gets 200 or 503 FST_TENANCY_BUSY', { timeout: 600_000 }, async (t) => {
  const { app, central } = await buildApp(t, {
    identification: ['header'],
    provisioning: { spares: 0 },
    database: { maxConnections: 20, poolSize: 2, poolCap: 50, acquireTimeoutMs: 3000 }
  }, routes())
  const tenants = await makeTenants(app, 500, 'b')
  const sampler = await connectionSampler(serverUrl(), central.prefix)
  const statuses = new Map<number, number>()
  const order = shuffle([...tenants, ...tenants], randomFor(t))
  try {
    await mapLimit(order, 64, async (tenant: Tenant) => {
      const res = await answered(app, tenant.identifier)
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      if (res.statusCode === 200) assert.deepEqual(res.json(), { tenant: tenant.identifier, n: 0 })
      else assertBusy(res)
    })
  } finally {
    await sampler.stop()
  }
  const stats = app.tenancy.stats()
  t.diagnostic(`answers ${JSON.stringify([...statuses])}, sampled peak ${sampler.peak()} in ${sampler.samples()} samples, stats ${JSON.stringify(stats.hosts)}`)
  assert.equal([...statuses.values()].reduce((a, b) => a + b, 0), 1000, 'every request was answered')
  assert.ok((statuses.get(200) ?? 0) > 0, 'requests got through')
  assert.ok(sampler.samples() > 10, 'the sampler ran during the burst')
  assert.ok(sampler.peak() >= 1 && sampler.peak() <= 20, `tenant connections peaked at ${sampler.peak()}`)
  assert.ok((stats.hosts.default?.peak ?? 0) <= 20, 'the budget never counted more than 20')
  assert.equal(stats.hosts.default?.waiting, 0)
})

/**
 * An app whose `/hold` route keeps its connection (in a transaction) until
 * `release()`; `hold` resolves once the route has it, with the response to
 * come (wrapped: a promise returned from an async function would be waited for).
 */
async function holdingApp (t: Parameters<typeof buildApp>[0], database: Record<string, number>): Promise<{
  app: FastifyInstance
  hold: (identifier: string) => Promise<{ holding: Promise<LightMyRequestResponse> }>
  release: () => void
}> {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let entered!: () => void
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const { app } = await buildApp(t, { identification: ['header'], provisioning: { spares: 0 }, database }, routes(gate, entered))
  const hold = async (identifier: string): Promise<{ holding: Promise<LightMyRequestResponse> }> => {
    // The tenant's connection opened first, by requests of its own: on a loaded machine a first connection may take
    // longer than the test's acquireTimeoutMs (that request gets 503, and the connection joins the pool once open),
    // and the holding request must hold, not be refused.
    await until(async () => (await answered(app, identifier)).statusCode, { is: (code) => code === 200, everyMs: 50, timeoutMs: 30_000, what: `a request for ${identifier} is served` })
    const holding = answered(app, identifier, '/hold')
    // A holding request answered before it holds fails the test with its answer (it would otherwise wait for the test's timeout).
    const early = await Promise.race([inside.then(() => null), holding])
    if (early !== null) assert.fail(`the holding request was answered before it held its connection: ${early.statusCode} ${early.body}`)
    return { holding }
  }
  return { app, hold, release }
}

test('a request that finds no connection within acquireTimeoutMs gets 503 FST_TENANCY_BUSY with Retry-After; an idle pool then gives its connection back', { timeout: 120_000 }, async (t) => {
  // 2 s to wait: once a is done, closing its idle connection and opening b's must fit in it on a loaded machine too.
  const { app, hold, release } = await holdingApp(t, { maxConnections: 1, poolSize: 1, acquireTimeoutMs: 2000 })
  const [a, b] = await makeTenants(app, 2, 'busy') as [Tenant, Tenant]
  const { holding } = await hold(a.identifier)
  const refused = await answered(app, b.identifier)
  assertBusy(refused)
  assert.equal(refused.headers['retry-after'], '2')
  assert.equal(app.tenancy.stats().hosts.default?.connections, 1)
  release()
  assert.equal((await holding).statusCode, 200)
  // Tenant a's pool is idle now and holds the host's one connection: it is closed to make room.
  const served = await answered(app, b.identifier)
  assert.equal(served.statusCode, 200, served.body)
  assert.deepEqual(app.tenancy.stats().hosts.default, { connections: 1, max: 1, waiting: 0, peak: 1 })
})

test('a request that waits for its own tenant\'s full pool longer than acquireTimeoutMs gets 503 FST_TENANCY_BUSY, and the pool serves again once its connection is back', { timeout: 120_000 }, async (t) => {
  // Room on the host (10) but one connection per pool: the wait is the pool's, not the budget's.
  const { app, hold, release } = await holdingApp(t, { maxConnections: 10, poolSize: 1, acquireTimeoutMs: 2000 })
  const [a] = await makeTenants(app, 1, 'pool-busy') as [Tenant]
  const { holding } = await hold(a.identifier)
  const refused = await answered(app, a.identifier)
  assertBusy(refused)
  assert.equal(app.tenancy.stats().hosts.default?.connections, 1)
  release()
  assert.equal((await holding).statusCode, 200)
  const served = await answered(app, a.identifier)
  assert.equal(served.statusCode, 200, served.body)
  assert.equal(served.json().tenant, a.identifier)
})

test('a pool evicted while in use keeps counting its connections until its request ends', { timeout: 120_000 }, async (t) => {
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  let holders = 0
  const waiting: Array<() => void> = []
  const held = async (n: number): Promise<void> => { while (holders < n) await new Promise<void>((resolve) => waiting.push(resolve)) }
  const { app } = await buildApp(t, {
    identification: ['header'],
    provisioning: { spares: 0 },
    database: { poolCap: 1, poolSize: 1, maxConnections: 2, acquireTimeoutMs: 1000 }
  }, routes(gate, () => { holders++; waiting.splice(0).forEach((w) => w()) }))
  const [a, b, c, d] = await makeTenants(app, 4, 'evict') as [Tenant, Tenant, Tenant, Tenant]
  const holdingA = answered(app, a.identifier, '/hold')
  await held(1)
  assert.equal((await answered(app, b.identifier)).statusCode, 200)
  const stats = app.tenancy.stats()
  assert.equal(stats.draining, 1, 'a\'s pool was evicted from the LRU while in use')
  assert.equal(stats.hosts.default?.connections, 2, 'and its connection still counts')
  // c takes b's idle connection and holds it; d finds a's draining connection still counted and waits in vain.
  const holdingC = answered(app, c.identifier, '/hold')
  await held(2)
  assertBusy(await answered(app, d.identifier))
  assert.equal(app.tenancy.stats().hosts.default?.connections, 2)
  open()
  assert.deepEqual([(await holdingA).statusCode, (await holdingC).statusCode], [200, 200])
  assert.equal(app.tenancy.stats().draining, 0, 'the evicted pool closed once its request ended')
  // Its connection is handed back as the socket closes, a moment after the pool: wait for that, not for a fixed time.
  await until(() => app.tenancy.stats().hosts.default?.connections ?? 0, { is: (n) => n <= 1, everyMs: 5, timeoutMs: 10_000, what: 'the closed pool\'s connection is handed back' })
  assert.equal((await answered(app, d.identifier)).statusCode, 200)
  assert.ok((app.tenancy.stats().hosts.default?.peak ?? 0) <= 2)
})
