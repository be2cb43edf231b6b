import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { until } from './helpers/poll.js'

const routes = (app: FastifyInstance): void => {
  app.get('/things', async (request) => ({ tenant: request.tenant?.identifier }))
  app.get('/status', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
}

test('a tenant in maintenance answers 503 with Retry-After and a page or JSON by Accept on every instance; other tenants and central routes are untouched', async (t) => {
  let now = Date.now()
  const options = { identification: ['subdomain' as const], centralDomains: ['example.com'], clock: () => now }
  const one = await buildApp(t, options, routes)
  const two = await buildApp(t, options, routes, one.central)
  const acme = await one.app.tenancy.create({ identifier: 'acme' })
  await one.app.tenancy.create({ identifier: 'bob' })
  const get = async (app: FastifyInstance, host: string, headers: Record<string, string> = {}, url = '/things'): Promise<any> =>
    await app.inject({ url, headers: { host, ...headers } })

  assert.equal((await get(two.app, 'acme.example.com')).statusCode, 200)
  const started = await one.app.tenancy.maintenance(acme, { message: 'Moving to <new> servers.', until: now + 600_000 })
  assert.equal(typeof started.bypassToken, 'string')
  assert.equal(one.app.tenancy.maintenanceOf(acme)?.message, 'Moving to <new> servers.')
  const began = performance.now()
  await until(async () => (await get(two.app, 'acme.example.com')).statusCode, { is: (status) => status === 503, timeoutMs: 5000, what: 'the second instance answers 503 for the tenant in maintenance' })
  t.diagnostic(`second instance in maintenance after ${Math.round(performance.now() - began)} ms`)

  const json = await get(two.app, 'acme.example.com', { accept: 'application/json' })
  assert.equal(json.statusCode, 503)
  assert.equal(json.headers['retry-after'], '600')
  assert.equal(json.json().code, 'FST_TENANCY_MAINTENANCE')
  assert.equal(json.json().message, 'Moving to <new> servers.')
  const page = await get(one.app, 'acme.example.com', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' })
  assert.equal(page.statusCode, 503)
  assert.match(page.headers['content-type'], /text\/html/)
  assert.match(page.body, /Down for maintenance/)
  assert.match(page.body, /Moving to &#60;new&#62; servers\./, 'the message is escaped')

  assert.equal((await get(two.app, 'bob.example.com')).json().tenant, 'bob', 'another tenant serves as usual')
  assert.equal((await get(two.app, 'example.com', {}, '/status')).statusCode, 200, 'central routes serve as usual')

  now += 600_000
  assert.equal((await get(two.app, 'acme.example.com')).statusCode, 200, 'maintenance ends by itself at until')
})

test('allowed addresses and the operator\'s bypass cookie get through; a wrong token does not; ending maintenance reaches every instance', async (t) => {
  const options = { identification: ['subdomain' as const], centralDomains: ['example.com'] }
  const one = await buildApp(t, options, routes)
  const two = await buildApp(t, options, routes, one.central)
  const acme = await one.app.tenancy.create({ identifier: 'acme' })
  const { bypassToken } = await one.app.tenancy.maintenance(acme, { allow: ['10.1.0.0/16', '2001:db8::1'] })
  await until(() => two.app.tenancy.maintenanceOf(acme) !== null, { timeoutMs: 5000, what: 'the second instance hears of the maintenance' })
  const from = async (remoteAddress: string): Promise<number> => (await two.app.inject({ url: '/things', remoteAddress, headers: { host: 'acme.example.com' } })).statusCode
  assert.equal(await from('10.1.2.3'), 200)
  assert.equal(await from('2001:db8::1'), 200)
  assert.equal(await from('10.2.0.1'), 503)
  const noEnd = await two.app.inject({ url: '/things', headers: { host: 'acme.example.com' } })
  assert.equal(noEnd.headers['retry-after'], '60', 'without until, clients are asked to retry in a minute')

  const wrong = await two.app.inject({ url: '/things?tenancy-bypass=nope', headers: { host: 'acme.example.com' } })
  assert.equal(wrong.statusCode, 503)
  const enter = await two.app.inject({ url: `/things?x=1&tenancy-bypass=${bypassToken}`, headers: { host: 'acme.example.com' } })
  assert.equal(enter.statusCode, 302)
  assert.equal(enter.headers.location, '/things?x=1', 'the token leaves the address bar')
  const cookie = enter.cookies.find((c) => c.name === 'tenancy_bypass')
  assert.ok(cookie?.httpOnly)
  const through = await two.app.inject({ url: '/things', headers: { host: 'acme.example.com', cookie: `tenancy_bypass=${cookie?.value}` } })
  assert.equal(through.statusCode, 200)
  const forged = await two.app.inject({ url: '/things', headers: { host: 'acme.example.com', cookie: 'tenancy_bypass=forged' } })
  assert.equal(forged.statusCode, 503)

  await one.app.tenancy.endMaintenance(acme)
  await until(async () => await from('10.2.0.1'), { is: (status) => status === 200, timeoutMs: 5000, what: 'the second instance serves again once maintenance ended' })
  assert.equal(one.app.tenancy.maintenanceOf(acme), null)
})

test('bad maintenance settings are refused with FST_TENANCY_INVALID_MAINTENANCE and change nothing', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'] }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  for (const settings of [{ until: Date.now() - 1000 }, { allow: ['not-an-address'] }, { allow: ['10.0.0.0/40'] }, { message: 'x'.repeat(1001) }]) {
    await assert.rejects(app.tenancy.maintenance(acme, settings), { code: 'FST_TENANCY_INVALID_MAINTENANCE', statusCode: 400 })
  }
  assert.equal(app.tenancy.maintenanceOf(acme), null)
  assert.equal((await app.inject({ url: '/things', headers: { host: 'acme.example.com' } })).statusCode, 200)
})
