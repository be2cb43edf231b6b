import { test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { assertWritten, logicalServers, moveInChild, moveRoutes, seedRows, startWriter, type WriterResult } from './helpers/moves.js'
import { dropDatabases, freshCentral, sql, urlFor, type CentralDatabase } from './helpers/database.js'
import { APP_ROLE, asRole, prepareShared, tenantView } from './helpers/shared.js'
import { buildApp } from './helpers/app.js'
import { until } from './helpers/poll.js'
import { ProjectEntity, TEST_SYNC } from './helpers/tenant-schema.js'
import { createAppRole } from '../server/database/shared/rls-policies.js'
import type { Tenant } from '../server/index.js'

// Strategy shared: a tenant's rows moved out of the shared tables into a database of its own (isolate), and back (consolidate).
let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

const ONLINE_STEPS = ['target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done']
const OFFLINE_STEPS = ['target', 'held', 'fenced', 'copied', 'sequences', 'switched', 'done']
const SCHEMA = 'tenant_shared'

interface World {
  sharedUrl: string
  app: FastifyInstance
  other: FastifyInstance
  central: CentralDatabase
  acme: Tenant
  beside: Tenant
}

/** The move routes, and a count through the ORM (its SQL names the schema, where raw SQL goes by the search path). */
function routes (app: FastifyInstance): void {
  moveRoutes(app)
  app.get('/orm-count', async (request) => ({ projects: await request.tenantEm.count(ProjectEntity, {}) }))
}

async function world (t: TestContext, rows: number, offline = false, database: { poolCap?: number } = {}): Promise<World> {
  const central = await freshCentral(null, servers.a.url)
  const shared = await prepareShared(central)
  // The isolated database may be on the other server: the app role is made there too.
  await createAppRole(servers.b.url, APP_ROLE, 'app-role-password').catch((error: { code?: string }) => { if (error.code !== '23505' && error.code !== '42710') throw error })
  const base = {
    strategy: 'shared' as const,
    shared: { url: shared.url },
    identification: ['header' as const],
    database: { hosts: servers.hosts, defaultHost: 'a', acquireTimeoutMs: 3000, ...database },
    moves: { drainMs: 1000, keepSourceMs: 0 },
    sync: TEST_SYNC
  }
  const { app } = await buildApp(t, base, routes, central)
  const { app: other } = await buildApp(t, base, routes, central)
  t.after(async () => {
    await other.close()
    await app.close()
    await central.drop()
    for (const server of Object.values(servers.hosts)) await dropDatabases(server, central.name, central.prefix)
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const beside = await app.tenancy.create({ identifier: 'beside' })
  await seedRows(await tenantView(central, acme.key), rows)
  await seedRows(await tenantView(central, beside.key), offline ? 100 : 500)
  return { sharedUrl: shared.url, app, other, central, acme, beside }
}

/** The tenant's isolated database on `host`, as its owner, with the shared schema first on the search path. */
function isolatedUrl (app: FastifyInstance, tenant: Tenant, host: 'a' | 'b'): string {
  const url = new URL(urlFor(app.tenancy.tenants.databaseName(tenant), servers.hosts[host]))
  url.searchParams.set('options', `-c search_path="${SCHEMA}"`)
  return url.toString()
}

/** The tenant's rows of the shared tables, by owner (no row-level security in the way), per table. */
async function sharedCounts (central: CentralDatabase, tenant: Tenant): Promise<{ users: number, projects: number, outbox: number }> {
  const [row] = await sql<{ users: number, projects: number, outbox: number }>(central.url, `select
    (select count(*) from ${SCHEMA}.users where tenant_key = $1)::int as users,
    (select count(*) from ${SCHEMA}.projects where tenant_key = $1)::int as projects,
    (select count(*) from ${SCHEMA}.fastify_tenancy_sync_outbox where tenant_key = $1)::int as outbox`, [tenant.key])
  return row as { users: number, projects: number, outbox: number }
}

/** A checksum of every row of the tenant in the shared tables: another tenant's move must leave it as it was. */
async function checksum (central: CentralDatabase, tenant: Tenant): Promise<string> {
  const [row] = await sql<{ sum: string }>(central.url, `select md5(
    (select coalesce(string_agg(u::text, ',' order by u.id), '') from ${SCHEMA}.users u where tenant_key = $1) ||
    (select coalesce(string_agg(p::text, ',' order by p.id), '') from ${SCHEMA}.projects p where tenant_key = $1)) as sum`, [tenant.key])
  return (row as { sum: string }).sum
}

async function port (app: FastifyInstance, tenant = 'acme'): Promise<string> {
  const res = await app.inject({ url: '/counts', headers: { 'x-tenant': tenant } })
  assert.equal(res.statusCode, 200, res.body)
  return String(res.json().port)
}

test('isolate a shared-table tenant into a database of its own on another server, and consolidate it back, under 50 writes a second: nothing lost or doubled, the neighbour untouched', async (t) => {
  const { app, other, central, acme, beside } = await world(t, 20_000)
  const besideBefore = await checksum(central, beside)
  const besideWriter = startWriter(other, beside, 20, 100, 'beside')

  // Isolate, online, while acme is written through the first instance.
  const writer = startWriter(app, acme, 50, 4000)
  const steps: string[] = []
  const isolated = await app.tenancy.isolate(acme, { host: 'b', onStep: (step) => { steps.push(step) } })
  const more = startWriter(app, acme, 50, 4000, 'after')
  await until(() => more.answered() >= 20, { what: 'twenty writes answered after the isolate' })
  const written = [await writer.stop(), await more.stop()]

  assert.equal(isolated.state, 'done')
  assert.deepEqual(steps, ONLINE_STEPS)
  for (const w of written) assert.deepEqual(w.failures, [], 'every write got 200')
  assert.ok((written[0] as WriterResult).inserted.size > 10, 'the writer wrote during the isolate')
  const own = isolatedUrl(app, acme, 'b')
  await assertWritten(own, written)
  const [totals] = await sql<{ users: number, projects: number, others: number }>(own, `select (select count(*) from users)::int as users, (select count(*) from projects)::int as projects,
    (select count(*) from projects where tenant_key <> $1)::int as others`, [acme.key])
  assert.deepEqual(totals, { users: 4000, projects: 12_000 + written.reduce((n, w) => n + w.inserted.size, 0), others: 0 })
  // Both instances serve acme from server b, without a restart.
  assert.equal(await port(app), String(servers.b.port))
  assert.equal(await port(other), String(servers.b.port))
  assert.equal((await app.tenancy.tenants.find('acme'))?.isolation, 'database')

  // The isolated database keeps row-level security: the app role without a tenant proof sees none of its rows.
  const [unproved] = await sql<{ n: number }>(asRole(own, APP_ROLE, 'app-role-password'), 'select count(*)::int as n from projects')
  assert.equal(unproved?.n, 0)

  // The shared tables keep acme's rows until the sweep (keepSourceMs 0), then have none.
  assert.ok((await sharedCounts(central, acme)).users > 0)
  assert.ok(await app.tenancy.moves.sweep() >= 1)
  assert.deepEqual(await sharedCounts(central, acme), { users: 0, projects: 0, outbox: 0 })

  // Consolidate, online, while acme is written through the second instance.
  const back = startWriter(other, acme, 50, 4000, 'back')
  const consolidated = await app.tenancy.consolidate(acme)
  const later = startWriter(app, acme, 50, 4000, 'later')
  await until(() => later.answered() >= 20, { what: 'twenty writes answered after the consolidate' })
  written.push(await back.stop(), await later.stop())
  const besideWritten = await besideWriter.stop()

  assert.equal(consolidated.state, 'done')
  assert.equal(consolidated.fromIsolation, 'database')
  assert.equal(consolidated.toIsolation, null)
  for (const w of written) assert.deepEqual(w.failures, [], 'every write got 200')
  await assertWritten(await tenantView(central, acme.key), written)
  assert.deepEqual(await sharedCounts(central, acme), { users: 4000, projects: 12_000 + written.reduce((n, w) => n + w.inserted.size, 0), outbox: 4000 })
  assert.equal(await port(other), String(servers.a.port))
  assert.equal((await app.tenancy.tenants.find('acme'))?.isolation, null)

  // Ids go on past every id acme had, on both instances.
  const [{ max }] = await sql<{ max: number }>(central.url, `select max(id)::int as max from ${SCHEMA}.projects where tenant_key = $1`, [acme.key]) as [{ max: number }]
  for (const instance of [app, other]) {
    const res = await instance.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'next' } })
    assert.equal(res.statusCode, 200)
    assert.ok(res.json().id > max, `id ${String(res.json().id)} comes after ${max}`)
  }

  // The kept isolated database goes with the sweep.
  assert.ok(await app.tenancy.moves.sweep() >= 1)
  const [left] = await sql<{ n: number }>(servers.b.url, 'select count(*)::int as n from pg_database where datname = $1', [app.tenancy.tenants.databaseName(acme)])
  assert.equal(left?.n, 0)

  // The neighbour never waited for either move, and lost nothing; its rows from before are as they were.
  // (Its writer's renames name user ids 1 to 100, which are acme's in the shared tables: beside sees none of them, and renames none.)
  assert.deepEqual(besideWritten.failures, [])
  await assertWritten(await tenantView(central, beside.key), [besideWritten], false)
  await sql(central.url, `delete from ${SCHEMA}.projects where tenant_key = $1 and title not like 'seed %'`, [beside.key])
  assert.equal(await checksum(central, beside), besideBefore)
})

test('an offline isolate cut short after the hold is undone by moves.abort, then isolated again to the end; a consolidate refuses a tenant in the shared tables', async (t) => {
  const { app, other, central, acme } = await world(t, 2000, true)
  const before = await sharedCounts(central, acme)
  await assert.rejects(app.tenancy.consolidate(acme), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_INVALID_MOVE')
    assert.match(error.message, /shared tables already/)
    return true
  })

  // Cut short right after the hold (as a crash would leave it): requests of acme wait, then get 503; beside is served.
  await assert.rejects(app.tenancy.isolate(acme, { offline: true, onStep: (step) => { if (step === 'fenced') throw new Error('cut short') } }), /cut short/)
  const held = await other.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'held' } })
  assert.equal(held.statusCode, 503)
  assert.equal((await other.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'beside' }, payload: { title: 'served' } })).statusCode, 200)

  // An instance that has not heard of the hold (here: the hold cleared by hand) meets the fence: 503 with a code, never a 500.
  await sql(central.url, 'update tenancy.tenants set held_at = null where key = $1', [acme.key])
  const fenced = await until(async () => {
    const r = await other.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'fenced' } })
    return r.json().code === 'FST_TENANCY_MOVING' ? undefined : r
  }, { what: 'a request of acme that is not held' })
  assert.equal(fenced?.statusCode, 503, fenced?.body)
  assert.equal(fenced?.json().code, 'FST_TENANCY_DATABASE_UNAVAILABLE')
  assert.doesNotMatch(String(fenced?.body), /fenced|55000|tenant_shared/)

  // Undone: the isolated database is gone, the fence is down, acme writes to the shared tables again.
  const aborted = await app.tenancy.moves.abort(acme)
  assert.equal(aborted.state, 'aborted')
  const name = app.tenancy.tenants.databaseName(acme)
  const [made] = await sql<{ n: number }>(servers.a.url, 'select count(*)::int as n from pg_database where datname = $1', [name])
  assert.equal(made?.n, 0)
  const res = await until(async () => {
    const r = await other.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'after abort' } })
    return r.statusCode === 200 ? r : undefined
  }, { what: 'acme takes writes again after the abort' })
  assert.equal(res?.statusCode, 200)
  assert.deepEqual(await sharedCounts(central, acme), { ...before, projects: before.projects + 1 })

  // Isolated again, offline, on the default host, to the end.
  const steps: string[] = []
  const done = await app.tenancy.isolate(acme, { offline: true, onStep: (step) => { steps.push(step) } })
  assert.equal(done.state, 'done')
  assert.deepEqual(steps, OFFLINE_STEPS)
  assert.equal(await port(other), String(servers.a.port))
  const own = isolatedUrl(app, acme, 'a')
  const [totals] = await sql<{ projects: number, titled: number }>(own, 'select count(*)::int as projects, count(*) filter (where title = \'after abort\')::int as titled from projects')
  assert.deepEqual(totals, { projects: before.projects + 1, titled: 1 })

  // An export reads the isolated database; imported under a new identifier into the shared tables (where rows get new ids) it has the same rows.
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  await app.tenancy.bundles.export('acme', out)
  out.end()
  const copy = await app.tenancy.bundles.import(Readable.from(Buffer.concat(chunks)), { as: 'acme-copy' })
  assert.equal(copy.isolation ?? null, null)
  const compared = await app.tenancy.bundles.compare('acme', 'acme-copy')
  assert.ok(compared.length >= 3 && compared.every((c) => c.a !== null && c.a.rows === c.b?.rows), JSON.stringify(compared))
  const titles = async (url: string): Promise<string[]> => (await sql<{ title: string }>(url, 'select title from projects order by title')).map((r) => r.title)
  assert.deepEqual(await titles(await tenantView(central, copy.key)), await titles(own))
  await app.tenancy.delete(copy)

  // Migrating goes through the isolated database as well, and deleting the tenant drops it.
  const results = await app.tenancy.migrate()
  assert.ok(results.every((r) => r.ok), JSON.stringify(results))
  assert.deepEqual(results.map((r) => r.identifier).sort(), ['acme', 'beside'])
  await app.tenancy.delete(acme)
  const [gone] = await sql<{ n: number }>(servers.a.url, 'select count(*)::int as n from pg_database where datname = $1', [name])
  assert.equal(gone?.n, 0)
  assert.equal((await other.inject({ url: '/counts', headers: { 'x-tenant': 'beside' } })).statusCode, 200)
})

test('killed after each step of an isolate or a consolidate, running it again finishes it: the rows are what the writer wrote, no slot or fence is left', async (t) => {
  const { sharedUrl, app, central, acme } = await world(t, 2000)
  const written: WriterResult[] = []
  let isolated = false
  for (const step of ONLINE_STEPS) {
    const operation: 'isolate' | 'consolidate' = isolated ? 'consolidate' : 'isolate'
    const writer = startWriter(app, acme, 50, 400, `${step}-${operation}`)
    const child = await moveInChild({ central, tenant: acme, hosts: servers.hosts, strategy: 'shared', sharedUrl }, 'b', step, 'online', operation)
    assert.equal(child.signal, 'SIGKILL', `killed after ${step}`)
    assert.equal(child.steps.at(-1), step)
    const status = await app.tenancy.moves.status(acme)
    if (step !== 'done') {
      assert.equal(status?.state, 'running')
      const finished: { state: string } = isolated ? await app.tenancy.consolidate(acme) : await app.tenancy.isolate(acme, { host: 'b' })
      assert.equal(finished.state, 'done', `finished after ${step}`)
    }
    written.push(await writer.stop())
    isolated = !isolated
    assert.equal((await app.tenancy.tenants.find('acme'))?.isolation ?? null, isolated ? 'database' : null)
    assert.equal(await port(app), String(servers[isolated ? 'b' : 'a'].port))
    await assertWritten(isolated ? isolatedUrl(app, acme, 'b') : await tenantView(central, acme.key), written)
    assert.deepEqual(await sql(servers.a.url, 'select slot_name from pg_replication_slots'), [], `no slot left after ${step}`)
    assert.deepEqual(await sql(servers.b.url, 'select slot_name from pg_replication_slots'), [], `no slot left after ${step}`)
    await app.tenancy.moves.sweep()
    // Swept: the rows live in one place only, and the shared tables carry no fence of acme.
    const elsewhere: number = isolated ? (await sharedCounts(central, acme)).projects : (await sql(servers.b.url, 'select 1 from pg_database where datname = $1', [app.tenancy.tenants.databaseName(acme)])).length
    assert.equal(elsewhere, 0, `nothing kept after ${step} and the sweep`)
    if (!isolated) assert.deepEqual(await sql(central.url, 'select tgname from pg_trigger where tgname like \'fst_fence_%\''), [])
  }
  for (const w of written) {
    assert.ok(w.longestMs < 3000 + 2000, `longest ${Math.round(w.longestMs)} ms`)
    // A request that met the fence a crash left gets 503 with a code, never a 500.
    assert.ok(w.failures.every((f) => f === '503 FST_TENANCY_MOVING' || f === '503 FST_TENANCY_DATABASE_UNAVAILABLE'), w.failures.join(', '))
  }
})

test('isolate into a schema of its own in the shared tables\' database, offline under writes, and consolidate it back: nothing lost or doubled; online is refused with a reason', async (t) => {
  const { app, other, central, acme, beside } = await world(t, 5000, true)
  await assert.rejects(app.tenancy.isolate(acme, { into: 'schema' }), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_MOVE_UNAVAILABLE')
    assert.match(error.message, /--offline/)
    return true
  })
  await assert.rejects(app.tenancy.isolate(acme, { into: 'schema', host: 'b', offline: true }), { code: 'FST_TENANCY_INVALID_MOVE', message: /takes no host/ })
  const besideBefore = await checksum(central, beside)

  const writer = startWriter(app, acme, 50, 1000)
  const isolated = await app.tenancy.isolate(acme, { into: 'schema', offline: true })
  const more = startWriter(other, acme, 50, 1000, 'after')
  await until(() => more.answered() >= 20, { what: 'twenty writes answered after the isolate' })
  const written = [await writer.stop(), await more.stop()]
  assert.equal(isolated.state, 'done')
  assert.equal((await app.tenancy.tenants.find('acme'))?.isolation, 'schema')
  // Held for the copy, a write waits (then 503 FST_TENANCY_MOVING past acquireTimeoutMs), never fails otherwise.
  for (const w of written) assert.ok(w.failures.every((f) => f === '503 FST_TENANCY_MOVING'), w.failures.join(', '))
  const schema = app.tenancy.tenants.databaseName(acme)
  const own = new URL(central.url)
  own.searchParams.set('options', `-c search_path="${schema}"`)
  await assertWritten(own.toString(), written)
  const [counts] = await sql<{ projects: number, users: number }>(own.toString(), 'select (select count(*) from projects)::int as projects, (select count(*) from users)::int as users')
  assert.deepEqual(counts, { projects: 3000 + written.reduce((n, w) => n + w.inserted.size, 0), users: 1000 })
  // Served from its schema by both instances; the app role without a proof sees nothing there; beside is untouched.
  for (const instance of [app, other]) {
    const res = await instance.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().projects, counts?.projects)
  }
  const [unproved] = await sql<{ n: number }>(asRole(central.url, APP_ROLE, 'app-role-password'), `select count(*)::int as n from "${schema}".projects`)
  assert.equal(unproved?.n, 0)
  await app.tenancy.moves.sweep()
  assert.deepEqual(await sharedCounts(central, acme), { users: 0, projects: 0, outbox: 0 })
  assert.equal(await checksum(central, beside), besideBefore)
  // A schema of its own has no host to move to: refused, and its rows stay.
  await assert.rejects(app.tenancy.move(acme, { host: 'b', offline: true }), { code: 'FST_TENANCY_INVALID_MOVE', message: /no host changes/ })
  assert.deepEqual(await sql(own.toString(), 'select count(*)::int as projects from projects'), [{ projects: counts?.projects }])

  // Back into the shared tables, offline, under writes.
  const back = startWriter(app, acme, 50, 1000, 'back')
  const consolidated = await app.tenancy.consolidate(acme, { offline: true })
  const later = startWriter(other, acme, 50, 1000, 'later')
  await until(() => later.answered() >= 20, { what: 'twenty writes answered after the consolidate' })
  written.push(await back.stop(), await later.stop())
  assert.equal(consolidated.state, 'done')
  for (const w of written) assert.ok(w.failures.every((f) => f === '503 FST_TENANCY_MOVING'), w.failures.join(', '))
  await assertWritten(await tenantView(central, acme.key), written)
  await app.tenancy.moves.sweep()
  const [left] = await sql<{ n: number }>(central.url, 'select count(*)::int as n from pg_namespace where nspname = $1', [schema])
  assert.equal(left?.n, 0)
  assert.equal(await checksum(central, beside), besideBefore)
})

test('pools that close and open again between an isolated schema, an isolated database and the shared tables keep each tenant\'s own schema in the ORM\'s SQL', async (t) => {
  // One pool kept at a time: each request closes another tenant's pool, and the next reuses its MikroORM instance.
  const { app, central, acme, beside } = await world(t, 500, true, { poolCap: 1 })
  const gamma = await app.tenancy.create({ identifier: 'gamma' })
  await seedRows(await tenantView(central, gamma.key), 50)
  await app.tenancy.isolate(acme, { into: 'schema', offline: true })
  await app.tenancy.isolate(beside, { offline: true })
  const expected = { acme: 300, beside: 60, gamma: 30 }
  for (let round = 0; round < 4; round++) {
    for (const [identifier, projects] of Object.entries(expected)) {
      const res = await app.inject({ url: '/orm-count', headers: { 'x-tenant': identifier } })
      assert.equal(res.statusCode, 200, `${identifier}, round ${round}: ${res.body}`)
      assert.deepEqual(res.json(), { projects }, `${identifier}, round ${round}`)
      // The pool before is closed (its MikroORM instance kept for the next pool) before the next request opens one.
      await until(async () => Number((await sql(servers.a.url, 'select count(*)::int as n from pg_stat_activity where usename = $1', [APP_ROLE]))[0]?.n) <= 1 ? true : undefined,
        { what: 'one pool of the app role left open' })
    }
  }
})
