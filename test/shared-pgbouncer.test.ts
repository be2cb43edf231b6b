import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { freshCentral, serverUrl } from './helpers/database.js'
import { APP_ROLE, prepareShared } from './helpers/shared.js'
import { startPgBouncer } from './helpers/bouncer.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

const TENANTS = 100
// 10,000 in the suite; the soak runs many more (RLS_REQUESTS=100000).
const REQUESTS = Number(process.env.RLS_REQUESTS ?? 10_000)
const IN_FLIGHT = 64

test(`${REQUESTS.toLocaleString('en')} interleaved requests over 100 tenants through PgBouncer in transaction mode (default_pool_size=1) see 0 foreign rows`, { timeout: 600_000 }, async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const appPassword = decodeURIComponent(new URL(shared.url).password)
  const server = new URL(serverUrl())
  const users = [
    { role: APP_ROLE, password: appPassword },
    { role: decodeURIComponent(server.username), password: decodeURIComponent(server.password) }
  ]
  const bouncer = await startPgBouncer(serverUrl(), users, 1)
  t.after(async () => { await bouncer.stop() })
  const { app } = await buildApp(t, {
    identification: ['header'],
    strategy: 'shared',
    // Eight client connections to PgBouncer, one server connection behind them all.
    shared: { url: bouncer.through(shared.url), poolSize: 8 }
  }, (a) => {
    // The ORM's filtered read, and a read that forgets the filter, on connections other tenants just used.
    a.get('/orm', async (request) => (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title))
    a.get('/raw', async (request) => (await request.tenantEm.execute('select title from projects')).map((r) => r.title as string))
  }, central)
  const tenants: Tenant[] = []
  for (let i = 0; i < TENANTS; i++) tenants.push(await app.tenancy.create({ identifier: `t${i}` }))
  for (const tenant of tenants) {
    await app.tenancy.run(tenant, async (scope) => {
      scope.em.create(ProjectEntity, { title: `${tenant.identifier}:a` })
      scope.em.create(ProjectEntity, { title: `${tenant.identifier}:b` })
      await scope.em.flush()
    })
  }
  let next = 0
  let foreign = 0
  let own = 0
  const worker = async (): Promise<void> => {
    while (next < REQUESTS) {
      const i = next++
      const tenant = tenants[(i * 7919) % TENANTS] as Tenant
      const res = await app.inject({ url: i % 2 === 0 ? '/orm' : '/raw', headers: { 'x-tenant': tenant.identifier } })
      assert.equal(res.statusCode, 200, res.body)
      for (const title of res.json() as string[]) {
        if (title.startsWith(`${tenant.identifier}:`)) own++
        else foreign++
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  assert.equal(foreign, 0)
  // Every request saw its tenant's two rows: nothing went missing either.
  assert.equal(own, REQUESTS * 2)
})
