import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { assertWritten, logicalServers, moveInChild, moveWorld, startWriter, tenantUrl, type MoveWorld, type WriterResult } from './helpers/moves.js'
import { freePort } from '../server/demo/embedded-postgres.js'
import { serverUrl, sql, urlFor } from './helpers/database.js'
import { repeat, until } from './helpers/poll.js'
import { run } from './helpers/cli.js'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

const ACQUIRE_MS = 3000

/** The tenant's database on a host, by URL. */
const dbOn = (world: MoveWorld, host: string): string => urlFor(world.app.tenancy.tenants.databaseName(world.tenant), world.hosts[host])

async function countsVia (app: FastifyInstance): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  return { status: res.statusCode, body: res.json() }
}

test('a tenant of 100,000 rows moves to another host under 50 writes a second: nothing lost or doubled, ids go on, and a second instance follows without a restart', async (t) => {
  const world = await moveWorld(t, servers, 100_000)
  const { app, other, tenant } = world
  // The second instance has the tenant cached, and a pool to its old host.
  assert.equal((await countsVia(other)).body.port, String(servers.a.port))
  const writer = startWriter(app, tenant, 50, 20_000)
  const reads: number[] = []
  const reader = repeat(async () => {
    const started = performance.now()
    reads.push((await countsVia(other)).status)
    reads.push(performance.now() - started > ACQUIRE_MS + 1000 ? -1 : 0)
  }, { everyMs: 50 })
  const steps: string[] = []
  const moved = await app.tenancy.move(tenant, { host: 'b', onStep: (step) => { steps.push(step) } })
  // Writes go on a little on the new host: 20 of them answered.
  const more = startWriter(app, tenant, 50, 20_000, 'after')
  await until(() => more.answered(), { is: (n) => n >= 20, what: 'the writer is answered 20 times on the new host' })
  const written = [await writer.stop(), await more.stop()]
  await reader.stop()

  assert.equal(moved.state, 'done')
  assert.deepEqual(steps, ['target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done'])
  assert.equal((await app.tenancy.tenants.find('acme'))?.databaseHost, 'b')
  for (const w of written) {
    assert.deepEqual(w.failures, [], 'every write got 200')
    assert.ok(w.longestMs < ACQUIRE_MS, `the longest write took ${Math.round(w.longestMs)} ms, under the bounded wait`)
  }
  assert.ok(written[0] !== undefined && written[0].inserted.size > 20, 'the writer wrote during the move')
  assert.ok(reads.every((r) => r === 200 || r === 0), 'every read of the second instance got 200 in bounded time')

  const target = dbOn(world, 'b')
  await assertWritten(target, written)
  const [totals] = await sql<{ users: number, projects: number, outbox: number }>(target, 'select (select count(*) from users)::int as users, (select count(*) from projects)::int as projects, (select count(*) from fastify_tenancy_sync_outbox)::int as outbox')
  const inserted = written.reduce((n, w) => n + w.inserted.size, 0)
  assert.deepEqual(totals, { users: 20_000, projects: 60_000 + inserted, outbox: 20_000 })

  // Sequences go on past every id the source gave out, on both instances.
  const [{ max }] = await sql<{ max: number }>(target, 'select max(id)::int as max from projects') as [{ max: number }]
  const ids = []
  for (const instance of [app, other]) {
    const res = await instance.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'next' } })
    assert.equal(res.statusCode, 200)
    ids.push(res.json().id as number)
  }
  assert.ok(ids.every((id) => id > max) && ids[0] !== ids[1], `new ids ${ids.join(', ')} come after ${max}`)

  // The second instance serves from the new host, and neither keeps a pool to the old one.
  assert.equal((await countsVia(other)).body.port, String(servers.b.port))
  await until(() => [app.tenancy.stats().hosts.a, other.tenancy.stats().hosts.a], { is: (hosts) => hosts.every((h) => h?.connections === 0), timeoutMs: 5000, what: 'no connection to host a is left' })
  // The source is kept, closed to connections, and nothing of the replication is left behind.
  const source = app.tenancy.tenants.databaseName(tenant)
  assert.deepEqual(await sql(servers.a.url, 'select datallowconn from pg_database where datname = $1', [source]), [{ datallowconn: false }])
  assert.deepEqual(await sql(servers.a.url, 'select slot_name from pg_replication_slots'), [])
  assert.deepEqual(await sql(target, 'select subname from pg_subscription'), [])
})

test('a moved tenant\'s source is kept for moves.keepSourceMs, then a sweep drops it; a move back replaces the kept copy', async (t) => {
  const world = await moveWorld(t, servers, 500, { moves: { keepSourceMs: 0, drainMs: 1000 } })
  const { app, tenant } = world
  const name = app.tenancy.tenants.databaseName(tenant)
  await app.tenancy.move(tenant, { host: 'b' })
  await app.tenancy.move(tenant, { host: 'a' })
  // Moving back to a replaced the copy kept there; b now keeps one.
  assert.equal((await countsVia(app)).body.port, String(servers.a.port))
  assert.equal(await app.tenancy.moves.sweep(), 1)
  assert.deepEqual(await sql(servers.b.url, 'select datname from pg_database where datname = $1', [name]), [])
  assert.deepEqual(await sql(servers.a.url, 'select datallowconn from pg_database where datname = $1', [name]), [{ datallowconn: true }])
  const history = await app.tenancy.moves.history(tenant)
  assert.deepEqual(history.map((m) => [m.fromHost, m.toHost, m.state, m.sourceDroppedAt !== null]), [['b', 'a', 'done', true], ['a', 'b', 'done', true]])
  assert.equal(await app.tenancy.moves.sweep(), 0)
  assert.equal((await countsVia(app)).body.projects, 300)
})

test('a move is refused with a code and a sentence: an unknown host, the tenant\'s own host, a source without logical replication; offline it moves anyway', async (t) => {
  // The test runner's server has wal_level = replica: it can subscribe, but not publish.
  const plain = serverUrl()
  const world = await moveWorld(t, { a: servers.a, hosts: { ...servers.hosts, plain } }, 500)
  const { app, tenant } = world
  t.after(async () => { await sql(plain, `drop database if exists "${app.tenancy.tenants.databaseName(tenant)}" with (force)`) })
  await assert.rejects(app.tenancy.move(tenant, { host: 'nowhere' }), { code: 'FST_TENANCY_INVALID_MOVE', message: /host "nowhere" is not in the database.hosts option/ })
  await assert.rejects(app.tenancy.move(tenant, { host: 'a' }), { code: 'FST_TENANCY_INVALID_MOVE', message: /on host "a" already/ })
  assert.equal(await app.tenancy.moves.status(tenant), null, 'a refused move leaves no record')
  // Offline, under 50 writes a second: they wait for the copy, then go on at the new host.
  const writer = startWriter(app, tenant, 50, 100)
  const moved = await app.tenancy.move(tenant, { host: 'plain', offline: true })
  const written = await writer.stop()
  assert.equal(moved.state, 'done')
  assert.deepEqual(written.failures, [])
  assert.ok(written.longestMs < ACQUIRE_MS)
  await assertWritten(dbOn(world, 'plain'), [written])
  const res = await app.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'acme' }, payload: { title: 'next' } })
  assert.equal(res.json().id, 300 + written.inserted.size + 1, 'the sequence went on')
  await assert.rejects(app.tenancy.move(tenant, { host: 'b' }), { code: 'FST_TENANCY_MOVE_UNAVAILABLE', message: /wal_level is "replica" on host "plain"/ })
  assert.equal((await app.tenancy.moves.status(tenant))?.toHost, 'plain', 'the refused move left no record')
})

test('a move whose target server cannot reach the source (moves.replicationUrls) is refused before anything is made', async (t) => {
  const closed = new URL(servers.a.url)
  closed.port = String(await freePort())
  const world = await moveWorld(t, servers, 100, { moves: { drainMs: 1000, replicationUrls: { a: closed.toString() } } })
  const { app, tenant } = world
  await assert.rejects(app.tenancy.move(tenant, { host: 'b' }), { code: 'FST_TENANCY_MOVE_UNAVAILABLE', message: /host "b" cannot reach host "a" as the subscription would/ })
  assert.equal(await app.tenancy.moves.status(tenant), null, 'no move record')
  assert.deepEqual(await sql(servers.b.url, 'select datname from pg_database where datname = $1', [app.tenancy.tenants.databaseName(tenant)]), [], 'no target database')
  assert.deepEqual(await sql(tenantUrl(app, tenant, world.hosts, 'a'), "select pubname from pg_publication where pubname like 'fastify_tenancy%'"), [], 'no publication')
  assert.deepEqual(await sql(servers.b.url, "select subname from pg_subscription where subname like 'fastify_tenancy%'"), [], 'no subscription, not even the probe')
})

test('a request held longer than database.acquireTimeoutMs gets 503 FST_TENANCY_MOVING with Retry-After; an abort lets it through', async (t) => {
  const world = await moveWorld(t, servers, 500)
  const { app, other, tenant } = world
  const child = await moveInChild(world, 'b', 'held')
  assert.equal(child.signal, 'SIGKILL')
  const started = performance.now()
  const res = await other.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  const waited = performance.now() - started
  assert.equal(res.statusCode, 503)
  assert.equal(res.json().code, 'FST_TENANCY_MOVING')
  assert.equal(res.headers['retry-after'], '3')
  assert.ok(waited >= ACQUIRE_MS - 100 && waited < ACQUIRE_MS + 2000, `waited ${Math.round(waited)} ms`)
  // A request waiting when the move is undone goes on, on the source.
  const waiting = other.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  await app.tenancy.moves.abort(tenant)
  const released = await waiting
  assert.equal(released.statusCode, 200)
  assert.equal(released.json().port, String(servers.a.port))
})

const ONLINE_STEPS = ['target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done']

test('killed after each step of a move, the move run again finishes it: the rows are what the writer wrote', async (t) => {
  const world = await moveWorld(t, servers, 2000)
  const { app, tenant } = world
  const written: WriterResult[] = []
  let from = 'a'
  for (const step of ONLINE_STEPS) {
    const to = from === 'a' ? 'b' : 'a'
    const writer = startWriter(app, tenant, 50, 400, `${step}-${to}`)
    const child = await moveInChild(world, to, step)
    assert.equal(child.signal, 'SIGKILL', `killed after ${step}`)
    assert.equal(child.steps.at(-1), step)
    const status = await app.tenancy.moves.status(tenant)
    if (step === 'done') {
      assert.equal(status?.state, 'done')
    } else {
      assert.equal(status?.state, 'running')
      assert.equal(status?.step, step)
      // Until the switch the source serves (once the move runs again, past a hold it left).
      const moved = await app.tenancy.move(tenant, { host: to })
      assert.equal(moved.state, 'done', `finished after ${step}`)
    }
    written.push(await writer.stop())
    assert.equal((await app.tenancy.tenants.find('acme'))?.databaseHost, to)
    assert.equal((await countsVia(app)).body.port, String(servers[to as 'a' | 'b'].port))
    await assertWritten(dbOn(world, to), written)
    assert.deepEqual(await sql(servers.hosts[from] as string, 'select slot_name from pg_replication_slots'), [], `no slot left after ${step}`)
    from = to
  }
  // A held request waited at most the bounded time; the writes that did not get 200 were those refused by a hold the crash left.
  for (const w of written) {
    assert.ok(w.longestMs < ACQUIRE_MS + 2000, `longest ${Math.round(w.longestMs)} ms`)
    // A request that found the tenant just before a crash left its source fenced meets a closed database: 503 with a code, never a 500.
    assert.ok(w.failures.every((f) => f === '503 FST_TENANCY_MOVING' || f === '503 FST_TENANCY_DATABASE_UNAVAILABLE'), w.failures.join(', '))
  }
})

test('killed after each step before the switch, an abort undoes the move: the source serves with every write, the target is gone; after the switch abort is refused', async (t) => {
  const world = await moveWorld(t, servers, 2000)
  const { app, tenant } = world
  const written: WriterResult[] = []
  for (const step of ONLINE_STEPS) {
    const writer = startWriter(app, tenant, 50, 400, `abort-${step}`)
    const child = await moveInChild(world, 'b', step)
    assert.equal(child.signal, 'SIGKILL')
    if (step === 'switched') {
      await assert.rejects(app.tenancy.moves.abort(tenant), { code: 'FST_TENANCY_INVALID_MOVE', message: /has switched to host "b" already/ })
      await app.tenancy.move(tenant, { host: 'b' })
    }
    if (step === 'done') await assert.rejects(app.tenancy.moves.abort(tenant), { code: 'FST_TENANCY_INVALID_MOVE', message: /no move of it is under way/ })
    if (step === 'switched' || step === 'done') {
      written.push(await writer.stop())
      await assertWritten(dbOn(world, 'b'), written)
      // Back to a for the next round.
      await app.tenancy.move(tenant, { host: 'a' })
      continue
    }
    const aborted = await app.tenancy.moves.abort(tenant)
    assert.equal(aborted.state, 'aborted')
    written.push(await writer.stop())
    assert.equal((await app.tenancy.tenants.find('acme'))?.databaseHost ?? 'a', 'a')
    const res = await countsVia(app)
    assert.equal(res.status, 200, `serves after an abort at ${step}`)
    assert.equal(res.body.port, String(servers.a.port))
    await assertWritten(dbOn(world, 'a'), written)
    assert.deepEqual(await sql(servers.b.url, 'select datname from pg_database where datname = $1', [app.tenancy.tenants.databaseName(tenant)]), [], `no target left after ${step}`)
    assert.deepEqual(await sql(servers.a.url, 'select slot_name from pg_replication_slots'), [])
    assert.deepEqual(await sql(dbOn(world, 'a'), 'select pubname from pg_publication'), [])
  }
})

test('tenants:move moves a tenant from the command line, prints each step, and --status, --abort and usage mistakes answer with a sentence', async (t) => {
  const world = await moveWorld(t, servers, 200)
  const dir = await mkdtemp(join(tmpdir(), 'ft-move-'))
  const config = join(dir, 'tenancy.config.mjs')
  const schema = pathToFileURL(join(process.cwd(), 'test', 'helpers', 'tenant-schema.ts')).href
  await writeFile(config, `import { TEST_TENANT_SCHEMA, TEST_SYNC } from ${JSON.stringify(schema)}\nexport default { ...TEST_TENANT_SCHEMA, sync: TEST_SYNC, ...${JSON.stringify({ database: { url: world.central.url, prefix: world.central.prefix, hosts: world.hosts, defaultHost: 'a' }, provisioning: { spares: 0 } })} }\n`)
  const usage = await run(['tenants:move', 'acme', '-c', config])
  assert.equal(usage.code, 2)
  assert.match(usage.stderr, /Give exactly one of --to <host>, --abort or --status\./)
  const nothing = await run(['tenants:move', 'acme', '--abort', '-c', config])
  assert.equal(nothing.code, 1)
  assert.equal(nothing.stderr.trim(), 'FST_TENANCY_INVALID_MOVE: Cannot move tenant "acme": no move of it is under way.')
  const moved = await run(['tenants:move', 'acme', '--to', 'b', '-c', config])
  assert.equal(moved.code, 0, moved.stderr)
  assert.match(moved.stdout, /^ {2}target\n {2}published\n[\s\S]* {2}switched\n {2}done\nTenant acme: online move a -> b: done, last step done; the source on a is kept until /)
  const status = await run(['tenants:move', 'acme', '--status', '--json', '-c', config])
  assert.equal(status.code, 0)
  assert.deepEqual((({ fromHost, toHost, state }) => ({ fromHost, toHost, state }))(JSON.parse(status.stdout)), { fromHost: 'a', toHost: 'b', state: 'done' })
  // The running server follows: its next request reads the new host.
  assert.equal((await countsVia(world.other)).body.port, String(servers.b.port))

  // A move that fails after it began says how to go on: here a table made by hand, outside the migrations, that the target lacks.
  await sql(tenantUrl(world.app, world.tenant, world.hosts, 'b'), 'create table by_hand (id int primary key)')
  const failed = await run(['tenants:move', 'acme', '--to', 'a', '--offline', '-c', config])
  assert.equal(failed.code, 1, failed.stdout)
  assert.match(failed.stderr, /by_hand/)
  assert.doesNotMatch(failed.stderr, /central:migrate/)
  assert.match(failed.stderr, /The move stopped after step "\w+": run tenants:move acme --to a --offline again to finish it, or tenants:move acme --abort to undo it\.\n$/)
  const undone = await run(['tenants:move', 'acme', '--abort', '-c', config])
  assert.equal(undone.code, 0, undone.stderr)
  assert.deepEqual([(await countsVia(world.other)).status, (await countsVia(world.other)).body.port], [200, String(servers.b.port)], 'served from its source again')
})
