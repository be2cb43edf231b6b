// The example's own tests, with fastify-tenancy/testing. They need
// DATABASE_URL (the central database; made when missing) and a PostgreSQL
// role that may create databases.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, test } from 'node:test'
import { checkIsolation, createTestTenant, TenancyIsolationError, withTenant } from 'fastify-tenancy/testing'
import { buildApp } from '../src/app.js'
import { Invoice } from '../src/invoice.js'

let app
before(async () => {
  app = await buildApp()
  await app.ready()
})
after(async () => { await app?.close() })

// Each tenant seeds one invoice through the app's own API, named with the check's marker.
const seed = async ({ marker, inject }) => {
  const res = await inject({ method: 'POST', url: '/invoices', payload: { number: marker, customer: marker, totalCents: 1200 } })
  assert.equal(res.statusCode, 201, res.body)
  return { id: String(res.json().id) }
}
const writeBody = (_route, marker) => ({ number: marker, customer: marker, totalCents: 1 })

test('a tenant sees its own invoices, and an unknown host none', async (t) => {
  const acme = await createTestTenant(app)
  const globex = await createTestTenant(app)
  t.after(async () => { await acme.remove(); await globex.remove() })
  for (const [tenant, number] of [[acme, 'A-1'], [globex, 'G-1'], [globex, 'G-2']]) {
    const res = await app.inject({ method: 'POST', url: '/invoices', headers: { host: tenant.host }, payload: { number, customer: 'Wile E.', totalCents: 500 } })
    assert.equal(res.statusCode, 201, res.body)
  }
  const list = async (host) => (await app.inject({ url: '/invoices', headers: { host } })).json().map((i) => i.number)
  assert.deepEqual(await list(acme.host), ['A-1'])
  assert.deepEqual(await list(globex.host), ['G-1', 'G-2'])
  assert.equal((await app.inject({ url: '/invoices', headers: { host: 'nobody.localhost' } })).statusCode, 404)
  // The same rows, seen from a test through the tenant's own EntityManager.
  assert.equal(await withTenant(app, globex.tenant, async (scope) => await scope.em.count(Invoice, {})), 2)
})

test('every route keeps the two tenants apart (the isolation check passes)', async () => {
  const report = await checkIsolation(app, { seed, writeBody, skip: ['/admin/'] })
  assert.deepEqual(report.leaks, [])
  for (const route of ['GET /invoices', 'GET /invoices/:id', 'PATCH /invoices/:id', 'DELETE /invoices/:id', 'POST /invoices/:id/remind']) {
    assert.ok(report.routes.includes(route), `${route} was probed`)
  }
})

test('the isolation check catches a route that forgets the tenant', async (t) => {
  const leaky = await buildApp({ leaky: true })
  t.after(async () => { await leaky.close() })
  await leaky.ready()
  await assert.rejects(checkIsolation(leaky, { seed, writeBody, skip: ['/admin/'] }), (error) => {
    assert.ok(error instanceof TenancyIsolationError)
    assert.match(error.message, /GET \/recent: tenant "test-[0-9a-f]+" got a row of tenant "test-[0-9a-f]+": \{"id":\d+,"number":"iso[0-9a-f]+"/)
    // b's turn gets a's cached rows; a's second turn gets its own back: one leak, on the route that forgets.
    assert.deepEqual(error.report.leaks.map((l) => l.route), ['GET /recent'])
    return true
  })
})

test('a reminder job runs in the tenant it was sent from', async (t) => {
  const acme = await createTestTenant(app)
  t.after(async () => { await acme.remove() })
  const created = await app.inject({ method: 'POST', url: '/invoices', headers: { host: acme.host }, payload: { number: 'A-7', customer: 'Road Runner', totalCents: 900 } })
  const sent = await app.inject({ method: 'POST', url: `/invoices/${created.json().id}/remind`, headers: { host: acme.host } })
  assert.equal(sent.statusCode, 202)
  // Polled, not slept: the worker picks the job up within its polling interval.
  const deadline = Date.now() + 30_000
  let reminded = null
  while (reminded === null && Date.now() < deadline) {
    reminded = (await app.inject({ url: `/invoices/${created.json().id}`, headers: { host: acme.host } })).json().remindedAt
    if (reminded === null) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.ok(reminded !== null, 'the job set remindedAt')
})

test('the command sees the tenants and their migrations', async (t) => {
  const acme = await createTestTenant(app)
  t.after(async () => { await acme.remove() })
  const stdout = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['node_modules/fastify-tenancy/bin/fastify-tenancy.mjs', 'tenants:status', `--tenants=${acme.tenant.identifier}`, '--json'], (error, out, err) => error === null ? resolve(out) : reject(new Error(err)))
  })
  const [row] = JSON.parse(stdout)
  assert.equal(row.identifier, acme.tenant.identifier)
  assert.deepEqual(row.pending, [])
  assert.ok(row.executed.some((name) => name.startsWith('Migration20260101000001')), stdout)
})
