import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql, urlFor } from './helpers/database.js'
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../server/demo/embedded-postgres.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'
import { CompanyEntity, companiesResource, demoCentralEntities } from '../server/demo/companies.js'
import { demoTenantEntities } from '../server/demo/tenant-schema.js'
import { QUICK, centralCompany, changeCentral, companyTables } from './helpers/companies.js'
import { until, within } from './helpers/poll.js'
import { prepareShared, tenantView } from './helpers/shared.js'

const USERS = [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }]

async function rename (app: import('fastify').FastifyInstance, globalId: string, name: string): Promise<void> {
  const em = app.tenancy.orm.em.fork()
  const user = await em.findOneOrFail(CentralUserEntity, { globalId })
  user.name = name
  await em.flush()
}

/**
 * Starts a stopped server again. It may still be letting go of its port and
 * lock file, so the start is tried until it succeeds; `log` adds the server's
 * last lines to a failure.
 */
async function startAgain (start: () => Promise<EmbeddedServer>, log = (): string => ''): Promise<EmbeddedServer> {
  let started: EmbeddedServer | undefined
  await until(async () => {
    try {
      started = await start()
      return true
    } catch (error) {
      return `${String(error)} ${log()}`
    }
  }, { is: (tried) => tried === true, everyMs: 500, timeoutMs: 15_000, what: 'the stopped server starts again' })
  return started as EmbeddedServer
}

const dataDir = join('.tmp', `faults-pg-${process.pid}`)
let second: EmbeddedServer | undefined
after(async () => { await second?.stop(); await rm(dataDir, { recursive: true, force: true }) })

test('a tenant database that is down catches up when it is back; the others are updated meanwhile; nothing is lost', { timeout: 120_000 }, async (t) => {
  const port = await freePort()
  second = await startEmbeddedPostgres({ dataDir, port, persistent: true, durable: false })
  const { app, central } = await buildApp(t, {
    database: { hosts: { one: serverUrl(), two: second.url } },
    sync: { mode: 'queued', resources: USERS }
  })
  const up = await app.tenancy.create({ identifier: 'up', databaseHost: 'one' })
  const down = await app.tenancy.create({ identifier: 'down', databaseHost: 'two' })
  const em = app.tenancy.orm.em.fork()
  const user = em.create(CentralUserEntity, { name: 'v1', email: 'u@x.test', password: 'p' } as never)
  await em.flush()
  const gid = String(user.globalId)
  for (const tenant of [up, down]) await app.tenancy.sync!.attach('users', gid, tenant)
  await app.tenancy.sync!.settle()
  const downUrl = (): string => { const u = new URL(second!.url); u.pathname = '/' + app.tenancy.tenants.databaseName(down); return u.toString() }
  assert.equal((await sql(downUrl(), 'select name from users'))[0]?.name, 'v1')

  await second.stop()
  await rename(app, gid, 'v2')
  // The central row and the reachable tenant have it at once; the change for the other waits in the queue.
  await until(async () => (await sql(urlFor(app.tenancy.tenants.databaseName(up)), 'select name from users'))[0]?.name, { is: (name) => name === 'v2', timeoutMs: 10_000, what: 'the reachable tenant has the change' })
  assert.equal((await sql(central.url, 'select name from tenancy.users'))[0]?.name, 'v2')
  const waiting = await sql(central.url, "select state, retry_count from fastify_tenancy_queue.job where name = 'fastify-tenancy-sync' and state <> 'completed'")
  assert.ok(waiting.length >= 1, 'the change for the unreachable tenant is still queued')

  // The stopped server may still be letting go of its port and lock file: try again until it starts.
  const logs: string[] = []
  second = await startAgain(async () => await startEmbeddedPostgres({ dataDir, port, persistent: true, durable: false, onLog: (line) => { logs.push(line) } }), () => logs.slice(-5).join(' '))
  await app.tenancy.sync!.settle(60_000)
  for (const url of [central.url, urlFor(app.tenancy.tenants.databaseName(up)), downUrl()]) {
    assert.equal((await sql(url, `select name from ${url === central.url ? 'tenancy.' : ''}users`))[0]?.name, 'v2', url)
  }
  // A failed try ends its job and queues the change again, counting the tries.
  const retried = await sql(central.url, "select max((data->>'attempts')::int) as n from fastify_tenancy_queue.job where name = 'fastify-tenancy-sync'")
  assert.ok(Number(retried[0]?.n) >= 1, 'it took retries')
})

for (const strategy of ['database', 'shared'] as const) {
  test(`${strategy === 'database' ? '' : `[${strategy}] `}a worker killed in the middle of a change: the change is retried elsewhere and written exactly once`, { timeout: 120_000 }, async (t) => {
    const { app, central } = await buildApp(t, {
      strategy,
      sync: { mode: 'queued', worker: false, jobExpireSeconds: 2, resources: USERS }
    })
    const tenant = await app.tenancy.create({ identifier: 'victim' })
    // The tenant's copies: its own database, or its rows of the shared tables seen as the app sees them.
    const db = strategy === 'database' ? urlFor(app.tenancy.tenants.databaseName(tenant)) : await tenantView(central, tenant.key)
    // Where a superuser watches and logs: the tenant database, or the central one holding the shared tables.
    const admin = strategy === 'database' ? db : central.url
    const em = app.tenancy.orm.em.fork()
    const user = em.create(CentralUserEntity, { name: 'before', email: 'k@x.test', password: 'p' } as never)
    await em.flush()
    const gid = String(user.globalId)
    // Only the child process works the queue: this app sends, it does not work.
    const extra = strategy === 'database' ? {} : { strategy, shared: { url: (await prepareShared(central)).url } }
    const child = fork(join('test', 'fixtures', 'sync-instance.ts'), [central.url, central.prefix, JSON.stringify({ ...extra, sync: { mode: 'queued', jobExpireSeconds: 2 } })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    await new Promise((resolve) => child.once('message', resolve))
    await app.tenancy.sync!.attach('users', gid, tenant)
    await app.tenancy.sync!.settle()
    assert.equal((await sql(db, 'select name from users'))[0]?.name, 'before')
    const users = strategy === 'database' ? 'users' : 'tenant_shared.users'
    await sql(admin, `create table public.write_log (op text);
      create function public.log_write() returns trigger language plpgsql security definer set search_path = public as $$ begin insert into public.write_log values (tg_op); return null; end $$;
      create trigger users_write_log after update on ${users} for each row execute function public.log_write();`)

    // Hold the row so the worker's write blocks mid-job.
    const lock = new pg.Client({ connectionString: admin })
    await lock.connect()
    await lock.query('begin')
    await lock.query(`select * from ${users} for update`)
    await rename(app, gid, 'after')
    await until(async () => (await sql(admin, "select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'")).length > 0,
      { timeoutMs: 20_000, what: 'the child\'s update is blocked on the lock' })
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    await lock.query('rollback')
    await lock.end()
    assert.equal((await sql(db, 'select name from users'))[0]?.name, 'before', 'the killed worker wrote nothing')

    // Another worker (a new one in this process) picks the expired job up.
    const { app: rescuer } = await buildApp(t, { strategy, ...extra, sync: { mode: 'queued', jobExpireSeconds: 2, resources: USERS } }, () => {}, central)
    await rescuer.tenancy.sync!.settle(60_000)
    assert.equal((await sql(db, 'select name from users'))[0]?.name, 'after')
    assert.deepEqual(await sql(admin, 'select op from public.write_log'), [{ op: 'UPDATE' }], 'written exactly once')
    const job = await sql(central.url, "select state, retry_count from fastify_tenancy_queue.job where name = 'fastify-tenancy-sync' order by created_on desc limit 1")
    assert.equal(job[0]?.state, 'completed')
    assert.ok(Number(job[0]?.retry_count) >= 1)
  })
}

for (const mode of ['inline', 'queued'] as const) {
  test(`[${mode}] a tenant database stopped while changes flow: central and the others take them, the stopped one catches up after its restart with no call from the app`, { timeout: 120_000 }, async (t) => {
    const port = await freePort()
    const dir = join('.tmp', `faults-pg-${mode}-${process.pid}`)
    let server = await startEmbeddedPostgres({ dataDir: dir, port, persistent: true, durable: false })
    t.after(async () => { await server.stop(); await rm(dir, { recursive: true, force: true }) })
    const { app, central } = await buildApp(t, {
      database: { hosts: { one: serverUrl(), two: server.url } },
      centralEntities: demoCentralEntities,
      tenantEntities: demoTenantEntities,
      sync: { mode, ...QUICK, resources: [USERS[0] as NonNullable<typeof USERS[0]>, companiesResource()] }
    })
    const up = await app.tenancy.create({ identifier: 'up', databaseHost: 'one' })
    const other = await app.tenancy.create({ identifier: 'other', databaseHost: 'one' })
    const down = await app.tenancy.create({ identifier: 'down', databaseHost: 'two' })
    const downUrl = (): string => { const u = new URL(server.url); u.pathname = '/' + app.tenancy.tenants.databaseName(down); return u.toString() }
    await companyTables(central.url, [urlFor(app.tenancy.tenants.databaseName(up)), urlFor(app.tenancy.tenants.databaseName(other)), downUrl()])
    const gid = await centralCompany(app, { name: 'v1', plan: 'pro' })
    for (const tenant of [up, other, down]) await app.tenancy.sync!.attach('companies', gid, tenant)
    await app.tenancy.sync!.settle()
    const name = async (url: string): Promise<unknown> => (await sql(url, 'select name from companies').catch(() => []))[0]?.name

    await server.stop()
    // A central change and a tenant change while one tenant database is down: neither flush fails.
    await changeCentral(app, gid, { name: 'v2' })
    await app.tenancy.run(up, async (scope) => {
      const copy = await scope.em.findOneOrFail(CompanyEntity, { globalId: gid })
      copy.name = 'v3 from up'
      await scope.em.flush()
    })
    for (const url of [central.url, urlFor(app.tenancy.tenants.databaseName(up)), urlFor(app.tenancy.tenants.databaseName(other))]) {
      await until(async () => await name(url) === 'v3 from up', { what: `${url} is updated while the other database is down` })
    }
    // Recovering on demand while a tenant is still down tries its changes once and returns: it never spins on them.
    await within(app.tenancy.sync!.recover(), { timeoutMs: 30_000, what: 'recover() returns while a tenant database is down' })

    // The stopped server may still be letting go of its port and lock file: try again until it starts.
    server = await startAgain(async () => await startEmbeddedPostgres({ dataDir: dir, port, persistent: true, durable: false }))
    await until(async () => await name(downUrl()) === 'v3 from up', { timeoutMs: 60_000, what: 'the stopped database catches up by itself' })
  })
}
