import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import pg from 'pg'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'

const DAY = 24 * 60 * 60 * 1000

const routes = (app: FastifyInstance): void => {
  app.get('/things/:id', async (request) => ({ tenant: request.tenant?.identifier ?? null, id: (request.params as { id: string }).id, query: request.query }))
}

test('a renamed tenant\'s old subdomain answers 301 to the same path and query on the new one, on a second instance within a second, and 404 after renames.keepMs', async (t) => {
  let now = Date.now()
  const clock = (): number => now
  const options = { identification: ['subdomain' as const, 'domain' as const], centralDomains: ['example.com'], clock }
  const one = await buildApp(t, options, routes)
  const two = await buildApp(t, options, routes, one.central)
  const acme = await one.app.tenancy.create({ identifier: 'acme' })
  const ask = async (app: FastifyInstance, host: string, url = '/things/7?x=1&y=two'): Promise<{ status: number, location?: string, body: any }> => {
    const res = await app.inject({ url, headers: { host } })
    return {
      status: res.statusCode,
      location: res.headers.location as string | undefined,
      body: res.statusCode === 200 || res.statusCode === 404 ? res.json() : null
    }
  }
  // The second instance has acme cached when the rename happens.
  assert.equal((await ask(two.app, 'acme.example.com')).body.tenant, 'acme')

  await sql(one.central.url, 'update tenancy.tenants set identifier = $1 where key = $2', ['initech', acme.key])
  const renamed = performance.now()
  const moved = await until(async () => await ask(two.app, 'acme.example.com:8080'), { is: (r) => r.status === 301, timeoutMs: 1000, what: 'the second instance redirects the old name' })
  t.diagnostic(`second instance redirected ${Math.round(performance.now() - renamed)} ms after the rename`)
  assert.equal(moved.location, 'http://initech.example.com:8080/things/7?x=1&y=two', 'same path and query, same port, new subdomain')
  assert.deepEqual((await ask(one.app, 'initech.example.com')).body, { tenant: 'initech', id: '7', query: { x: '1', y: 'two' } })

  const [former] = await one.app.tenancy.formerNames(acme)
  assert.equal(former?.name, 'acme')
  assert.equal(former?.kind, 'identifier')
  assert.ok(Math.abs((former?.expiresAt.getTime() ?? 0) - (former?.renamedAt.getTime() ?? 0) - 90 * DAY) < 1000, 'kept 90 days by default')

  now = Date.now() + 90 * DAY + 1000
  for (const app of [one.app, two.app]) {
    const gone = await ask(app, 'acme.example.com')
    assert.equal(gone.status, 404)
    assert.equal(gone.body.code, 'FST_TENANCY_UNKNOWN_TENANT')
  }
  assert.deepEqual(await one.app.tenancy.formerNames(acme), [], 'an expired name is no longer listed')
})

test('former names follow the clock option: a name redirects and stays reserved until the same moment, then is free to take', async (t) => {
  let now = Date.now() + 7 * DAY
  const clock = (): number => now
  const { app } = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['example.com'], clock, renames: { keepMs: 60_000 } }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  const bob = await app.tenancy.create({ identifier: 'bob' })
  await app.tenancy.update(acme, { identifier: 'initech' })
  await app.tenancy.domains.add(acme, 'initech.test', { primary: true })
  await app.tenancy.domains.remove(acme, 'acme.test')
  for (const former of await app.tenancy.formerNames(acme)) {
    assert.ok(Math.abs(former.renamedAt.getTime() - now) < 5000, `${former.name} was renamed at the clock's time, not the database's`)
    assert.equal(former.expiresAt.getTime() - former.renamedAt.getTime(), 60_000)
  }
  const status = async (host: string): Promise<number> => (await app.inject({ url: '/things/1', headers: { host } })).statusCode

  now += 55_000
  assert.deepEqual([await status('acme.example.com'), await status('acme.test')], [301, 301], 'still redirected')
  await assert.rejects(app.tenancy.update(bob, { identifier: 'acme' }), { code: 'FST_TENANCY_IDENTIFIER_TAKEN' }, 'and still reserved')
  await assert.rejects(app.tenancy.domains.add(bob, 'acme.test'), { code: 'FST_TENANCY_DOMAIN_TAKEN' })
  await assert.rejects(app.tenancy.create({ identifier: 'acme' }), { code: 'FST_TENANCY_IDENTIFIER_TAKEN' })

  now += 10_000
  assert.deepEqual([await status('acme.example.com'), await status('acme.test')], [404, 404], 'no longer redirected')
  // ... and so free: never a name that neither redirects nor can be taken.
  const other = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  assert.equal(other.identifier, 'acme')
  const home = await app.inject({ url: '/things/1', headers: { host: 'acme.test' } })
  assert.equal(home.json().tenant, 'acme')
})

test('a former domain and a former path prefix redirect to the new ones; names nobody had stay 404', async (t) => {
  const { app } = await buildApp(t, { identification: ['path', 'domain'], centralDomains: ['example.com'], renames: { keepMs: 60_000 } }, (app) => {
    app.register(async (scoped) => { routes(scoped) }, { prefix: '/:tenant' })
    routes(app)
  })
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test', 'www.acme.test'] })
  // Through the write API (the admin uses it too).
  await app.tenancy.update(acme, { identifier: 'initech' })
  await app.tenancy.domains.remove(acme, 'acme.test')
  await app.tenancy.domains.add(acme, 'initech.test', { primary: true })

  const byDomain = await app.inject({ url: '/things/3?a=b', headers: { host: 'acme.test' } })
  assert.equal(byDomain.statusCode, 301)
  assert.equal(byDomain.headers.location, 'http://initech.test/things/3?a=b', 'the primary domain is the new home')

  const byPath = await app.inject({ url: '/acme/things/4?q=acme', headers: { host: 'example.com' } })
  assert.equal(byPath.statusCode, 301)
  assert.equal(byPath.headers.location, 'http://example.com/initech/things/4?q=acme', 'only the prefix changes, not the query')
  assert.equal((await app.inject({ url: '/initech/things/4', headers: { host: 'example.com' } })).json().tenant, 'initech')

  const [domainName] = (await app.tenancy.formerNames(acme)).filter((f) => f.kind === 'domain')
  assert.equal(domainName?.name, 'acme.test')
  assert.ok(Math.abs((domainName?.expiresAt.getTime() ?? 0) - (domainName?.renamedAt.getTime() ?? 0) - 60_000) < 1000, 'kept for renames.keepMs')

  const nobody = await app.inject({ url: '/nobody/things/4', headers: { host: 'example.com' } })
  assert.equal(nobody.statusCode, 404)
  assert.equal(nobody.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
})

test('while a former name redirects, no other tenant can take it; its own tenant can take it back', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['example.com'] }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  await app.tenancy.update(acme, { identifier: 'initech' })
  await app.tenancy.domains.remove(acme, 'acme.test')

  await assert.rejects(app.tenancy.create({ identifier: 'acme' }), { code: 'FST_TENANCY_IDENTIFIER_TAKEN' })
  await assert.rejects(app.tenancy.create({ identifier: 'other', domains: ['acme.test'] }), { code: 'FST_TENANCY_DOMAIN_TAKEN' })
  const other = await app.tenancy.tenants.find('other')
  assert.equal(other, null, 'the refused tenant left nothing behind')
  const bob = await app.tenancy.create({ identifier: 'bob' })
  await assert.rejects(app.tenancy.update(bob, { identifier: 'acme' }), { code: 'FST_TENANCY_IDENTIFIER_TAKEN' })
  await assert.rejects(app.tenancy.domains.add(bob, 'acme.test'), { code: 'FST_TENANCY_DOMAIN_TAKEN' })
  assert.equal((await app.tenancy.tenants.find(bob.key))?.identifier, 'bob')
  await assert.rejects(sql(central.url, 'update tenancy.tenants set identifier = $1 where key = $2', ['acme', bob.key]), { code: '23505' }, 'raw SQL is refused as well')

  await app.tenancy.update(acme, { identifier: 'acme' })
  const home = await app.inject({ url: '/things/1', headers: { host: 'acme.example.com' } })
  assert.equal(home.json().tenant, 'acme', 'the tenant is back at its old name')
  const names = (await app.tenancy.formerNames(acme)).map((f) => f.name)
  assert.deepEqual(names.sort(), ['acme.test', 'initech'], 'its current name is no longer a former one')
})

test('a name being given up is never taken by another tenant in the same moment: renames racing from two instances', async (t) => {
  const options = { identification: ['subdomain' as const], centralDomains: ['example.com'] }
  const one = await buildApp(t, options, routes)
  const two = await buildApp(t, options, routes, one.central)
  const a = await one.app.tenancy.create({ identifier: 'name-0' })
  const b = await two.app.tenancy.create({ identifier: 'bystander' })
  let taken = 0
  for (let i = 0; i < 15; i++) {
    // A leaves name-i for name-(i+1) on one instance while B grabs name-i on the other.
    const [moved, grabbed] = await Promise.allSettled([
      one.app.tenancy.update(a, { identifier: `name-${i + 1}` }),
      two.app.tenancy.update(b, { identifier: `name-${i}` })
    ])
    assert.equal(moved.status, 'fulfilled', `round ${i}: the rename goes through`)
    if (grabbed.status === 'fulfilled') taken++
    else assert.equal((grabbed.reason as { code?: string }).code, 'FST_TENANCY_IDENTIFIER_TAKEN', `round ${i}: ${String(grabbed.reason)}`)
  }
  assert.equal(taken, 0, 'no round handed the old name to the other tenant')
  assert.equal((await one.app.tenancy.tenants.find(b.key))?.identifier, 'bystander')
  assert.equal((await one.app.tenancy.formerNames(a)).length, 15)
})

test('a name freed by a transaction still open cannot be taken by one waiting on it: it waits, then is refused', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['subdomain', 'domain'], centralDomains: ['example.com'] }, routes)
  const a = await app.tenancy.create({ identifier: 'old-name', domains: ['old.test'] })
  const b = await app.tenancy.create({ identifier: 'other' })
  const first = new pg.Client({ connectionString: central.url })
  const second = new pg.Client({ connectionString: central.url })
  await first.connect()
  await second.connect()
  try {
    const secondPid = (await second.query('select pg_backend_pid() as pid')).rows[0].pid
    const waiting = async (): Promise<void> => {
      await until(async () => (await sql(central.url, 'select 1 from pg_stat_activity where pid = $1 and wait_event_type = \'Lock\'', [secondPid])).length === 1,
        { timeoutMs: 10_000, what: 'the second session waits on the first one\'s lock' })
    }

    for (const [free, take] of [
      ['update tenancy.tenants set identifier = \'new-name\' where key = $1', 'update tenancy.tenants set identifier = \'old-name\' where key = $1'],
      ['delete from tenancy.domains where domain = \'old.test\' and tenant_key = $1', 'insert into tenancy.domains (domain, tenant_key) values (\'old.test\', $1)']
    ] as const) {
      await first.query('begin')
      await first.query(free, [a.key])
      const taking = second.query(take, [b.key]).then(() => null, (error: { code?: string, constraint?: string }) => error)
      await waiting()
      await first.query('commit')
      const error = await taking
      assert.equal(error?.code, '23505', `${take}: refused once the name is a former name`)
      assert.match(String(error?.constraint), /tenant_former_names_(identifier|domain)/)
    }
  } finally {
    // Before the test's central database is dropped under them.
    await first.end()
    await second.end()
  }
})

test('a bulk import of 25,000 tenants with domains in one transaction is not refused for lack of lock memory', async (t) => {
  const { app, central } = await buildApp(t, { cache: { listen: false } })
  // One name lock per row would need more than the server's lock table holds (64 per connection slot).
  await sql(central.url, `
    insert into tenancy.tenants (key, identifier, resource_key, name, status, database_host)
      select gen_random_uuid(), 'bulk' || i, gen_random_uuid(), 'Bulk ' || i, 'active', 'default' from generate_series(1, 25000) i;
    insert into tenancy.domains (domain, tenant_key, is_primary)
      select t.identifier || '.import.test', t.key, true from tenancy.tenants t where t.identifier like 'bulk%';`)
  assert.deepEqual(await sql(central.url, "select count(*)::int as n from tenancy.domains where domain like '%.import.test'"), [{ n: 25000 }])
  // The name locks still guard single writes afterwards.
  await assert.rejects(app.tenancy.create({ identifier: 'fresh', domains: ['bulk7.import.test'] }), { code: 'FST_TENANCY_DOMAIN_TAKEN' })
})
