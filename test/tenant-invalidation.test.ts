import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { ormProvider, type TenantProvider } from '../server/index.js'
import { tenancyRuntime } from '../server/tenancy.js'

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

const ask = async (app: FastifyInstance, host: string): Promise<string | null> => {
  const res = await app.inject({ url: '/whoami', headers: { host } })
  return res.statusCode === 200 ? res.json().identifier : null
}

test('a stalled change listener is noticed by its heartbeat, and a rename made meanwhile is served correctly within 5 s', async (t) => {
  const { app, central } = await buildApp(t, { centralDomains: ['localhost'], identification: ['subdomain'], cache: { heartbeatMs: 300 } }, whoami)
  await app.tenancy.create({ identifier: 'acme' })
  assert.equal(await ask(app, 'acme.localhost'), 'acme')
  const pid = tenancyRuntime(app.tenancy).listenerPid()
  assert.ok(pid !== null)
  const [backend] = await sql<{ application_name: string, datname: string }>(central.url, 'select application_name, datname from pg_stat_activity where pid = $1', [pid])
  assert.deepEqual(backend, { application_name: 'fastify-tenancy:listen', datname: central.name })
  // The server process stops answering, but its TCP connection stays up: only a heartbeat can tell.
  process.kill(pid, 'SIGSTOP')
  try {
    await sql(central.url, 'update tenancy.tenants set identifier = $1 where identifier = $2', ['acme-corp', 'acme'])
    const renamed = performance.now()
    await until(async () => await ask(app, 'acme.localhost') === null && await ask(app, 'acme-corp.localhost') === 'acme-corp', { timeoutMs: 5000, what: 'the rename is served while the listener is stalled' })
    t.diagnostic(`rename served after ${Math.round(performance.now() - renamed)} ms`)
    await until(() => tenancyRuntime(app.tenancy).listenerPid(), { is: (now) => now !== null && now !== pid, timeoutMs: 5000, what: 'a new change listener replaces the stalled one' })
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  // The new connection hears changes again.
  await sql(central.url, 'update tenancy.tenants set identifier = $1 where identifier = $2', ['acme-inc', 'acme-corp'])
  await until(async () => await ask(app, 'acme-inc.localhost'), { is: (id) => id === 'acme-inc', timeoutMs: 2000, what: 'the new listener hears a rename' })
})

test('a change to one tenant forgets only that tenant\'s cache entries, and the cached misses of its new names', async (t) => {
  const counts = { queries: 0 }
  const { app, central } = await buildApp(t, {
    centralDomains: ['localhost'],
    identification: ['subdomain', 'domain'],
    providerDrivers: countingDriver(counts),
    provider: { driver: 'counting' },
    // Misses are kept long: only the change can make the new names found.
    // The heartbeat is the first test's; here a late one on a loaded machine would empty the cache, and the counts would not say what the change did.
    cache: { missTtlMs: 60_000, heartbeatMs: 120_000 }
  }, whoami)
  const listener = tenancyRuntime(app.tenancy).listenerPid()
  const names = Array.from({ length: 12 }, (_, i) => `shop-${i}`)
  for (const identifier of names) await app.tenancy.create({ identifier, domains: [`${identifier}.test`] })
  const everyone = async (): Promise<void> => {
    for (const identifier of names.slice(1)) {
      assert.equal(await ask(app, `${identifier}.localhost`), identifier)
      assert.equal(await ask(app, `${identifier}.test`), identifier)
    }
  }
  await everyone()
  assert.equal(await ask(app, 'shop-0.localhost'), 'shop-0')
  assert.equal(await ask(app, 'shop-0.test'), 'shop-0')
  // The creations' own notifications come back over the listener a moment later and drop their tenants' entries once more.
  // PostgreSQL delivers notifications in commit order: once a domain added after them is served (its miss is kept 60 s), they are heard too.
  assert.equal(await ask(app, 'barrier.example'), null)
  await sql(central.url, 'insert into tenancy.domains (domain, tenant_key) select $1, key from tenancy.tenants where identifier = $2', ['barrier.example', 'shop-0'])
  await until(async () => await ask(app, 'barrier.example'), { is: (id) => id === 'shop-0', timeoutMs: 10_000, what: 'a domain added after the creations is heard' })
  await everyone()
  // Misses for the names shop-0 is about to get.
  assert.equal(await ask(app, 'renamed.localhost'), null)
  assert.equal(await ask(app, 'renamed.example'), null)
  counts.queries = 0
  await everyone()
  assert.equal(counts.queries, 0, 'every tenant is cached')
  assert.equal(tenancyRuntime(app.tenancy).listenerPid(), listener, 'the change listener stayed up')

  // Plain SQL, as an operator would: the row triggers say which tenant and which names changed.
  await sql(central.url, 'update tenancy.tenants set identifier = $1 where identifier = $2', ['renamed', 'shop-0'])
  await until(async () => await ask(app, 'renamed.localhost') === 'renamed' && await ask(app, 'shop-0.localhost') === null, { timeoutMs: 10_000, what: 'a rename in SQL is served under the new name only' })
  await sql(central.url, 'insert into tenancy.domains (domain, tenant_key) select $1, key from tenancy.tenants where identifier = $2', ['renamed.example', 'renamed'])
  await until(async () => await ask(app, 'renamed.example'), { is: (id) => id === 'renamed', timeoutMs: 10_000, what: 'a domain added in SQL serves its tenant' })
  // The tenant's other entries went too (its domain now answers with the new identifier).
  assert.equal(await ask(app, 'shop-0.test'), 'renamed')

  counts.queries = 0
  await everyone()
  assert.equal(tenancyRuntime(app.tenancy).listenerPid(), listener, 'the change listener stayed up')
  assert.equal(counts.queries, 0, 'the other tenants stayed cached')
})
