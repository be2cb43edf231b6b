import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { tenancyPlugin } from '../server/index.js'
import { tenancyRuntime } from '../server/tenancy.js'

const routes = (app: FastifyInstance): void => {
  app.get('/things', async (request) => ({ tenant: request.tenant?.identifier }))
}
const status = async (app: FastifyInstance, host: string): Promise<number> => (await app.inject({ url: '/things', headers: { host, accept: 'application/json' } })).statusCode

/** Backends of the central database that LISTEN (their last statement a LISTEN or a heartbeat), by pid. */
async function listeningBackends (url: string, database: string): Promise<Set<number>> {
  const rows = await sql<{ pid: number }>(url, "select pid from pg_stat_activity where datname = $1 and (query ilike 'listen %' or query like 'select pg_notify(%')", [database])
  return new Set(rows.map((r) => r.pid))
}

test('behind PgBouncer in transaction mode, a maintenance switch made on one instance reaches a second one (the listener uses database.directUrl)', async (t) => {
  const { app: setup, central } = await buildApp(t, { cache: { listen: false }, provisioning: { spares: 0 } })
  const bouncer = await startPgBouncer(central.url, { mode: 'transaction', poolSize: 4 })
  t.after(async () => { await bouncer.stop() })
  const options = {
    identification: ['subdomain' as const],
    centralDomains: ['example.com'],
    provisioning: { spares: 0 },
    database: { url: bouncer.url(central.url), directUrl: central.url, pooler: 'transaction' as const }
  }
  const one = await buildApp(t, options, routes, central)
  const two = await buildApp(t, options, routes, central)
  const acme = await setup.tenancy.create({ identifier: 'acme' })
  assert.equal(await status(two.app, 'acme.example.com'), 200)

  await one.app.tenancy.maintenance(acme, { message: 'Upgrading.' })
  await until(async () => await status(two.app, 'acme.example.com') === 503, { timeoutMs: 5000, what: 'the second instance heard the switch' })
  await one.app.tenancy.endMaintenance(acme)
  await until(async () => await status(two.app, 'acme.example.com') === 200, { timeoutMs: 5000, what: 'the second instance heard its end' })
})

test('one instance has one LISTEN connection; when its backend stalls, the heartbeat notices and a maintenance switch made meanwhile is followed within the bound', async (t) => {
  const heartbeatMs = 300
  const options = { identification: ['subdomain' as const], centralDomains: ['example.com'], provisioning: { spares: 0 }, cache: { heartbeatMs } }
  const one = await buildApp(t, options, routes)
  const before = await listeningBackends(one.central.url, one.central.name)
  const two = await buildApp(t, options, routes, one.central)
  const acme = await one.app.tenancy.create({ identifier: 'acme' })
  assert.equal(await status(two.app, 'acme.example.com'), 200)
  const listener = tenancyRuntime(two.app.tenancy).listener
  assert.equal(listener?.state, 'listening')

  const mine = [...await listeningBackends(one.central.url, one.central.name)].filter((pid) => !before.has(pid))
  assert.deepEqual(mine, [tenancyRuntime(two.app.tenancy).listenerPid()], 'the second instance listens on one connection, for every feature')
  // Its server process stops answering, but the TCP connection stays up: only a heartbeat can tell.
  for (const pid of mine) process.kill(pid, 'SIGSTOP')
  let took = 0
  try {
    const started = Date.now()
    await one.app.tenancy.maintenance(acme, { message: 'Upgrading.' })
    await until(async () => await status(two.app, 'acme.example.com') === 503, { timeoutMs: 5000, what: 'the second instance followed the switch' })
    took = Date.now() - started
    assert.equal((listener?.lastError as { code?: string } | null)?.code, 'FST_TENANCY_LISTENER_LOST')
  } finally {
    for (const pid of mine) process.kill(pid, 'SIGCONT')
  }
  t.diagnostic(`followed ${took} ms after the switch (heartbeat ${heartbeatMs} ms)`)
  await until(() => listener?.state === 'listening' && !mine.includes(listener.pid() ?? -1), { timeoutMs: 5000, what: 'the listener is back on a connection of its own' })
  // The new connection hears changes as they come.
  await one.app.tenancy.endMaintenance(acme)
  await until(async () => await status(two.app, 'acme.example.com') === 200, { timeoutMs: 2000, what: 'the second instance hears the end of maintenance on the new connection' })
})

test('behind a transaction-mode pooler without database.directUrl the plugin refuses to register when changes are followed, with cache: false too', async () => {
  const url = 'postgres://u:p@127.0.0.1:1/none'
  for (const extra of [{}, { cache: false as const }]) {
    const app = Fastify()
    await assert.rejects(async () => { await app.register(tenancyPlugin, { database: { url, pooler: 'transaction' }, ...extra }); await app.ready() }, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'FST_TENANCY_INVALID_OPTION')
      assert.match(error.message, /database\.directUrl/)
      return true
    })
    await app.close().catch(() => {})
  }
})
