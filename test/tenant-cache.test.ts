import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { ormProvider, TenantEntity, type TenantProvider } from '../server/index.js'
import type { FastifyInstance } from 'fastify'

/** A provider driver that counts the lookups reaching the database. */
function countingDriver (counts: { queries: number }): Record<string, (config: Record<string, unknown>, ctx: { orm: any }) => TenantProvider> {
  return {
    counting: (_config, { orm }) => {
      const inner = ormProvider({ orm })
      const count = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => { counts.queries++; return await fn(...a) }
      return { name: 'counting', byIdentifier: count(inner.byIdentifier), byKey: count(inner.byKey), byResourceKey: count(inner.byResourceKey), byDomain: count(inner.byDomain as (d: string) => Promise<any>) }
    }
  }
}

const whoami = (app: FastifyInstance): void => { app.get('/whoami', async (request) => ({ identifier: request.tenant?.identifier ?? null })) }

test('a second resolution makes no query, concurrent misses make one, and unknown names are remembered for missTtlMs by the clock option', async (t) => {
  const counts = { queries: 0 }
  // The cache's entries expire by the clock option: the test moves it instead of sleeping past missTtlMs.
  let now = Date.now()
  const { app } = await buildApp(t, {
    identification: ['header'],
    clock: () => now,
    providerDrivers: countingDriver(counts),
    provider: { driver: 'counting' },
    // This test counts queries on one instance: NOTIFYs from create's own writes would empty the cache at random moments.
    cache: { missTtlMs: 300, listen: false }
  }, whoami)
  await app.tenancy.create({ identifier: 'acme' })
  counts.queries = 0
  const first = await Promise.all(Array.from({ length: 20 }, async () => await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })))
  assert.ok(first.every((r) => r.json().identifier === 'acme'))
  assert.equal(counts.queries, 1, '20 concurrent misses share one query')
  await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })
  assert.equal(counts.queries, 1, 'a hit makes no query')

  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })).statusCode, 404)
  assert.equal((await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })).statusCode, 404)
  assert.equal(counts.queries, 2, 'the second unknown lookup came from the cache')
  now += 299
  await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })
  assert.equal(counts.queries, 2, 'within missTtlMs the unknown name still comes from the cache')
  now += 1
  await app.inject({ url: '/whoami', headers: { 'x-tenant': 'nobody' } })
  assert.equal(counts.queries, 3, 'after missTtlMs the unknown name is looked up again')
  await app.inject({ url: '/whoami', headers: { 'x-tenant': 'acme' } })
  assert.equal(counts.queries, 3, 'a found tenant is kept for ttlMs, longer than a miss')
})

test('renaming an identifier and adding or removing a domain take effect on the next request, here and on a second instance', async (t) => {
  const one = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['example.com'] }, whoami)
  const two = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['example.com'] }, whoami, one.central)
  const acme = await one.app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  const ask = async (app: FastifyInstance, host: string): Promise<string | null> => {
    const res = await app.inject({ url: '/whoami', headers: { host } })
    return res.statusCode === 200 ? res.json().identifier : null
  }
  for (const app of [one.app, two.app]) {
    assert.equal(await ask(app, 'acme.example.com'), 'acme')
    assert.equal(await ask(app, 'acme.test'), 'acme')
    assert.equal(await ask(app, 'shop.test'), null)
  }

  // Through the ORM on instance one: at once on one, within a second on two.
  const em = one.app.tenancy.orm.em.fork()
  const row = await em.findOneOrFail(TenantEntity, { key: acme.key })
  row.identifier = 'acme-corp'
  await em.flush()
  assert.equal(await ask(one.app, 'acme-corp.example.com'), 'acme-corp')
  assert.equal(await ask(one.app, 'acme.example.com'), null)
  await until(async () => await ask(two.app, 'acme-corp.example.com') === 'acme-corp' && await ask(two.app, 'acme.example.com') === null,
    { timeoutMs: 1000, what: 'instance two serves the rename made through the ORM on one' })

  // Plain SQL from outside (an operator): both instances follow through LISTEN/NOTIFY within a second.
  await sql(one.central.url, 'insert into tenancy.domains (domain, tenant_key) values ($1, $2)', ['shop.test', acme.key])
  for (const app of [one.app, two.app]) await until(async () => await ask(app, 'shop.test'), { is: (id) => id === 'acme-corp', timeoutMs: 1000, what: 'an added domain serves its tenant' })
  await sql(one.central.url, 'delete from tenancy.domains where domain = $1', ['acme.test'])
  for (const app of [one.app, two.app]) await until(async () => await ask(app, 'acme.test'), { is: (id) => id === null, timeoutMs: 1000, what: 'a removed domain serves no tenant' })
  await sql(one.central.url, 'update tenancy.tenants set identifier = $1 where key = $2', ['acme-inc', acme.key])
  for (const app of [one.app, two.app]) await until(async () => await ask(app, 'acme-inc.example.com'), { is: (id) => id === 'acme-inc', timeoutMs: 1000, what: 'an identifier renamed in SQL serves its tenant' })
})
