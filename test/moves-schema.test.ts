import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { assertWritten, logicalServers, moveInChild, moveWorld, seedRows, startWriter, tenantUrl, type MoveWorld, type WriterResult } from './helpers/moves.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'

// Schema tenants moved between hosts: each host is a database (one per server) holding every tenant's schema.
let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

const ACQUIRE_MS = 3000
const ONLINE_STEPS = ['target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done']

const tablesOn = (world: MoveWorld, host: string): string => tenantUrl(world.app, world.tenant, world.hosts, host)
const schemaOf = (world: MoveWorld): string => world.app.tenancy.tenants.databaseName(world.tenant)

async function counts (app: FastifyInstance, tenant = 'acme'): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await app.inject({ url: '/counts', headers: { 'x-tenant': tenant } })
  return { status: res.statusCode, body: res.json() }
}

test('a schema tenant moves to another host under 50 writes a second: nothing lost or doubled, ids go on, a second instance follows, and the schema tenant beside it is untouched', async (t) => {
  const world = await moveWorld(t, servers, 20_000, { strategy: 'schema', moves: { drainMs: 1000, keepSourceMs: 0 } })
  const { app, other, tenant } = world
  // A neighbour in the same database on host a, served throughout.
  const neighbour = await app.tenancy.create({ identifier: 'beside', databaseHost: 'a' })
  await seedRows(tenantUrl(app, neighbour, world.hosts, 'a'), 500)
  assert.equal((await counts(other)).body.port, String(servers.a.port))
  const writer = startWriter(app, tenant, 50, 4000)
  const besideWriter = startWriter(other, neighbour, 20, 100, 'beside')
  const steps: string[] = []
  const moved = await app.tenancy.move(tenant, { host: 'b', onStep: (step) => { steps.push(step) } })
  const more = startWriter(app, tenant, 50, 4000, 'after')
  // Writes after the switch, on the new host, before the writers stop.
  await until(() => more.answered() >= 20, { what: 'twenty writes answered after the move' })
  const written = [await writer.stop(), await more.stop()]
  const beside = await besideWriter.stop()

  assert.equal(moved.state, 'done')
  assert.deepEqual(steps, ONLINE_STEPS)
  for (const w of written) {
    assert.deepEqual(w.failures, [], 'every write got 200')
    // A held request waits at most acquireTimeoutMs (then 503); the margin is for a loaded test machine.
    assert.ok(w.longestMs < ACQUIRE_MS + 2000, `the longest write took ${Math.round(w.longestMs)} ms`)
  }
  assert.ok(written[0] !== undefined && written[0].inserted.size > 10, 'the writer wrote during the move')
  await assertWritten(tablesOn(world, 'b'), written)
  const [totals] = await sql<{ users: number, projects: number, outbox: number }>(tablesOn(world, 'b'), 'select (select count(*) from users)::int as users, (select count(*) from projects)::int as projects, (select count(*) from fastify_tenancy_sync_outbox)::int as outbox')
  assert.deepEqual(totals, { users: 4000, projects: 12_000 + written.reduce((n, w) => n + w.inserted.size, 0), outbox: 4000 })

  // The neighbour never waited and lost nothing; it stays on host a, in its own schema.
  assert.deepEqual(beside.failures, [])
  assert.ok(beside.longestMs < ACQUIRE_MS + 2000)
  await assertWritten(tenantUrl(app, neighbour, world.hosts, 'a'), [beside])
  assert.equal((await counts(other, 'beside')).body.port, String(servers.a.port))

  // Ids go on past the source's, on both instances; the second instance serves from host b without a restart.
  const [{ max }] = await sql<{ max: number }>(tablesOn(world, 'b'), 'select max(id)::int as max from projects') as [{ max: number }]
  const ids = []
  for (const instance of [app, other]) {
    const res = await instance.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'next' } })
    assert.equal(res.statusCode, 200)
    ids.push(res.json().id as number)
  }
  assert.ok(ids.every((id) => id > max) && ids[0] !== ids[1], `new ids ${ids.join(', ')} come after ${max}`)
  assert.equal((await counts(other)).body.port, String(servers.b.port))

  // The source schema is kept, fenced: a write there is refused; nothing of the replication is left.
  await assert.rejects(sql(tablesOn(world, 'a'), 'insert into projects (title) values (\'late\')'), /this tenant is moving to another host/)
  assert.deepEqual(await sql(servers.a.url, 'select slot_name from pg_replication_slots'), [])
  assert.deepEqual(await sql(world.hosts.a as string, 'select pubname from pg_publication'), [])
  assert.deepEqual(await sql(world.hosts.b as string, 'select subname from pg_subscription'), [])
  // The sweep drops the kept schema, and only it.
  assert.equal(await app.tenancy.moves.sweep(), 1)
  assert.deepEqual(await sql(world.hosts.a as string, 'select nspname from pg_namespace where nspname = $1', [schemaOf(world)]), [])
  assert.equal((await counts(app, 'beside')).status, 200)
  await until(async () => (await counts(app)).body.projects === (totals?.projects as number) + 2, { what: 'the tenant, served from its new host, counts its two new projects', timeoutMs: 2000 })
})

test('a schema tenant\'s move killed after each step is finished by moving again: the rows are what the writer wrote', async (t) => {
  const world = await moveWorld(t, servers, 2000, { strategy: 'schema' })
  const { app, tenant } = world
  const written: WriterResult[] = []
  let from = 'a'
  for (const step of ONLINE_STEPS) {
    const to = from === 'a' ? 'b' : 'a'
    const writer = startWriter(app, tenant, 50, 400, `${step}-${to}`)
    const child = await moveInChild(world, to, step)
    assert.equal(child.signal, 'SIGKILL', `killed after ${step}`)
    assert.equal(child.steps.at(-1), step)
    if (step !== 'done') {
      const moved = await app.tenancy.move(tenant, { host: to })
      assert.equal(moved.state, 'done', `finished after ${step}`)
    }
    written.push(await writer.stop())
    assert.equal((await app.tenancy.tenants.find('acme'))?.databaseHost, to)
    assert.equal((await counts(app)).body.port, String(servers[to as 'a' | 'b'].port))
    await assertWritten(tablesOn(world, to), written)
    assert.deepEqual(await sql(servers.hosts[from] as string, 'select slot_name from pg_replication_slots'), [], `no slot left after ${step}`)
    from = to
  }
  for (const w of written) {
    assert.ok(w.longestMs < ACQUIRE_MS + 2000, `longest ${Math.round(w.longestMs)} ms`)
    assert.ok(w.failures.every((f) => f === '503 FST_TENANCY_MOVING'), w.failures.join(', '))
  }
})

test('a schema tenant\'s move killed after each step before the switch is undone by --abort: the source takes writes again, the target schema is gone', async (t) => {
  const world = await moveWorld(t, servers, 2000, { strategy: 'schema' })
  const { app, tenant } = world
  const written: WriterResult[] = []
  for (const step of ONLINE_STEPS.slice(0, ONLINE_STEPS.indexOf('switched'))) {
    const writer = startWriter(app, tenant, 50, 400, `abort-${step}`)
    const child = await moveInChild(world, 'b', step)
    assert.equal(child.signal, 'SIGKILL')
    const aborted = await app.tenancy.moves.abort(tenant)
    assert.equal(aborted.state, 'aborted')
    written.push(await writer.stop())
    const res = await app.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: `after-abort-${step}` } })
    assert.equal(res.statusCode, 200, `takes writes after an abort at ${step}`)
    written.push({ inserted: new Map([[`after-abort-${step}`, res.json().id]]), names: new Map(), statuses: new Map(), longestMs: 0, failures: [] })
    assert.equal((await counts(app)).body.port, String(servers.a.port))
    await assertWritten(tablesOn(world, 'a'), written)
    assert.deepEqual(await sql(world.hosts.b as string, 'select nspname from pg_namespace where nspname = $1', [schemaOf(world)]), [], `no target left after ${step}`)
    assert.deepEqual(await sql(servers.a.url, 'select slot_name from pg_replication_slots'), [])
    assert.deepEqual(await sql(world.hosts.a as string, 'select pubname from pg_publication'), [])
    assert.deepEqual(await sql(world.hosts.b as string, 'select subname from pg_subscription'), [])
  }
})
