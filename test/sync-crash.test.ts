import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { sql, urlFor, type CentralDatabase } from './helpers/database.js'
import { USERS } from './helpers/companies.js'
import { until } from './helpers/poll.js'
import { CentralUserEntity, type Tenant } from '../server/index.js'

/** Another instance of the app (test/fixtures/sync-instance.ts), killed when the test ends at the latest. */
async function instance (t: TestContext, central: CentralDatabase, options: Record<string, unknown>): Promise<ChildProcess> {
  const child = fork(join('test', 'fixtures', 'sync-instance.ts'), [central.url, central.prefix, JSON.stringify(options)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  t.after(() => { child.kill('SIGKILL') })
  await new Promise((resolve, reject) => { child.once('message', resolve); child.once('exit', reject) })
  return child
}

/** Holds row locks from a connection of its own, so a delivery blocks on them. */
async function holdRows (url: string, statement: string, params: unknown[] = []): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query('begin')
  await client.query(statement, params)
  return async () => { await client.query('rollback'); await client.end() }
}

/** Polls until some statement in the database waits for a lock (the other instance's, blocked on ours); `what` names it. */
async function someoneWaits (url: string, what: string): Promise<void> {
  await until(async () => (await sql(url, "select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).length > 0, { what })
}

async function killed (child: ChildProcess): Promise<void> {
  const exit = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exit
}

interface World {
  app: FastifyInstance
  central: CentralDatabase
  tenant: Tenant
  other: Tenant
  gid: string
  copy: (t: Tenant) => Promise<unknown>
  child: ChildProcess
}

/** An app, another instance with `childOptions`, two tenants with a user's copy. */
async function world (t: TestContext, sync: Record<string, unknown>, childOptions: Record<string, unknown>): Promise<World> {
  const { app, central } = await buildApp(t, { sync: { ...sync, resources: [USERS] } })
  const child = await instance(t, central, childOptions)
  const [tenant, other] = [await app.tenancy.create({ identifier: 'victim' }), await app.tenancy.create({ identifier: 'other' })]
  const em = app.tenancy.orm.em.fork()
  const user = em.create(CentralUserEntity, { name: 'before', email: 'crash@x.test', password: 'p' } as never)
  await em.flush()
  const gid = String(user.globalId)
  for (const each of [tenant, other]) await app.tenancy.sync!.attach('users', gid, each)
  await app.tenancy.sync!.settle()
  const copy = async (each: Tenant): Promise<unknown> => (await sql(urlFor(app.tenancy.tenants.databaseName(each)), 'select name from users'))[0]?.name
  return { app, central, tenant, other, gid, copy, child }
}

test('[inline] a central change cut off mid-delivery by a crash is delivered by another running instance within 5 s', { timeout: 120_000 }, async (t) => {
  const w = await world(t, { mode: 'inline' }, { sync: { mode: 'inline' } })
  const child = w.child
  const db = urlFor(w.app.tenancy.tenants.databaseName(w.tenant))
  const release = await holdRows(db, 'select * from users for update')
  child.send({ op: 'central', globalId: w.gid, name: 'after' })
  await someoneWaits(db, 'the other instance is delivering, blocked on the copy')
  await killed(child)
  await release()
  const since = Date.now()
  assert.equal((await sql(w.central.url, 'select name from tenancy.users'))[0]?.name, 'after', 'the change was committed centrally')
  await until(async () => await w.copy(w.tenant) === 'after' && await w.copy(w.other) === 'after', { timeoutMs: 5_000, what: 'every copy has it within 5 s' })
  t.diagnostic(`delivered ${Date.now() - since} ms after the crash`)
})

for (const mode of ['inline', 'queued'] as const) {
  test(`[${mode}] a tenant change cut off by a crash before it was forwarded is forwarded by another running instance within 5 s`, { timeout: 120_000 }, async (t) => {
    const w = await world(t, { mode }, { sync: { mode } })
    const child = w.child
    // The forward's central transaction waits on the central row.
    const release = await holdRows(w.central.url, 'select * from tenancy.users where global_id = $1 for update', [w.gid])
    child.send({ op: 'tenant', tenant: w.tenant.key, globalId: w.gid, name: 'from the tenant' })
    await until(async () => await w.copy(w.tenant) === 'from the tenant', { what: 'the tenant change committed' })
    await someoneWaits(w.central.url, 'the other instance is forwarding it, blocked on the central row')
    await killed(child)
    await release()
    const since = Date.now()
    await until(async () => (await sql(w.central.url, 'select name from tenancy.users'))[0]?.name === 'from the tenant' && await w.copy(w.other) === 'from the tenant', { timeoutMs: 5_000, what: 'the central row and the other copy have it within 5 s' })
    t.diagnostic(`forwarded ${Date.now() - since} ms after the crash`)
  })
}

test('[queued] a worker killed mid-delivery: a worker of another running instance delivers the change within 5 s', { timeout: 120_000 }, async (t) => {
  // This app only sends: the victim works the queue, then a rescuer starts before the victim dies.
  // A job's expiry is set by the instance that queues it: every instance has the same jobExpireSeconds.
  const w = await world(t, { mode: 'queued', worker: false, jobExpireSeconds: 2 }, { sync: { mode: 'queued', jobExpireSeconds: 2 } })
  const victim = w.child
  const db = urlFor(w.app.tenancy.tenants.databaseName(w.tenant))
  const release = await holdRows(db, 'select * from users for update')
  const em = w.app.tenancy.orm.em.fork()
  const user = await em.findOneOrFail(CentralUserEntity, { globalId: w.gid })
  user.name = 'after'
  await em.flush()
  await someoneWaits(db, 'the victim took the change and blocks on the copy')
  await buildApp(t, { sync: { mode: 'queued', jobExpireSeconds: 2, resources: [USERS] } }, () => {}, w.central)
  await killed(victim)
  await release()
  const since = Date.now()
  await until(async () => await w.copy(w.tenant) === 'after' && await w.copy(w.other) === 'after', { timeoutMs: 5_000, what: 'every copy has it within 5 s' })
  t.diagnostic(`delivered ${Date.now() - since} ms after the crash`)
})
