import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Migration } from '@mikro-orm/migrations'
import pg from 'pg'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { adminPlugin } from '../server/admin/index.js'
import { PERMISSIONS } from '../server/entities/central/admin.entity.js'
import { AdminClient, COOKIE_SECRET, makeAdmin } from './helpers/admin.js'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { makeTenants } from './helpers/tenants.js'
import { MARKER, markerRuns, withMarker } from './helpers/rollouts.js'
import { tenantMigrations } from './helpers/tenant-schema.js'
import { until, within } from './helpers/poll.js'
import type { Tenant } from '../server/index.js'

/**
 * A latch in the marker migration: the first tenant goes through, the next
 * says it has begun and waits at the gate until the test opens it, so a
 * rollout is running (a tenant in flight) when the admin halts it.
 */
const latch = { passed: 0, entered: (): void => {}, gate: Promise.resolve() }

class Migration20261206000002GatedMarker extends Migration {
  override async up (): Promise<void> {
    if (latch.passed++ >= 1) { latch.entered(); await latch.gate }
    this.addSql('create table rollout_marker (id integer primary key)')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists rollout_marker')
  }
}
const gatedMarker = { migrationsList: [...tenantMigrations.migrationsList, { name: MARKER, class: Migration20261206000002GatedMarker }] }

/**
 * Tenants made at the test app's one migration, then the admin on a second
 * app on the same central database: the new deploy, with one more tenant
 * migration for a rollout to bring.
 */
async function deploy (t: TestContext, count: number, migrations = withMarker): Promise<{ next: FastifyInstance, tenants: Tenant[], centralUrl: string }> {
  const { app, central } = await buildApp(t)
  const tenants = await makeTenants(app, count, 'r')
  const { app: next } = await buildApp(t, { tenantMigrations: migrations }, async (next) => {
    await next.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  }, central)
  return { next, tenants, centralUrl: central.url }
}

async function signedIn (app: FastifyInstance, permissions = [...PERMISSIONS]): Promise<AdminClient> {
  const admin = await makeAdmin(app, permissions)
  const client = new AdminClient(app)
  assert.equal((await client.signIn(admin.email, admin.password)).statusCode, 303)
  return client
}

const idOf = (location: unknown): string => String(location).split('/').pop() as string

test('a rollout started from the Fleet page with a canary of 1 waits after it; Resume runs the rest, each tenant migrated once; bad input gets the ledger\'s sentence on the form', async (t) => {
  const { next, tenants, centralUrl } = await deploy(t, 4)
  const client = await signedIn(next)

  const fleet = await client.get('/admin/fleet')
  assert.match(fleet.body, /href="\/admin\/fleet\/rollouts\/new"[^>]*data-confirm>Start a rollout/)
  assert.match(fleet.body, /No rollout yet/)
  assert.match((await client.get('/admin/fleet/rollouts/new')).body, /name="canary"/)

  // Bad input: the form again with FST_TENANCY_INVALID_ROLLOUT's sentence, never a 500, and nothing recorded.
  for (const [values, sentence] of [
    [{ canary: '0' }, /canary \(--canary\) must be at least 1 tenant/],
    [{ canary: '1.5' }, /--canary names &quot;1\.5&quot;, which is not among the tenants/],
    [{ concurrency: 'lots' }, /concurrency \(--concurrency\) must be a whole number of at least 1, not &quot;lots&quot;/],
    [{ maxFailures: 'many' }, /maxFailures \(--max-failures\) must be a whole number of at least 1 or a percentage/]
  ] as const) {
    const bad = await client.post('/admin/fleet/rollouts/new', values, { from: '/admin/fleet/rollouts/new' })
    assert.equal(bad.statusCode, 422, JSON.stringify(values))
    assert.match(bad.body, sentence)
    assert.match(bad.body, /id="rollout-error"/)
  }
  assert.equal((await next.tenancy.rollouts.list()).total, 0, 'a refused start records no rollout')

  const started = await client.post('/admin/fleet/rollouts/new', { canary: '1', maxFailures: '2', concurrency: '2' }, { from: '/admin/fleet/rollouts/new' })
  assert.equal(started.statusCode, 303, started.body)
  const id = idOf(started.headers.location)
  assert.equal(started.headers.location, `/admin/fleet/rollouts/${id}`)
  let page = ''
  await until(async () => {
    page = (await client.get(`/admin/fleet/rollouts/${id}`)).body
    return page.includes('data-status="waiting"')
  }, { what: 'the rollout waits after its canary' })
  assert.match(page, /waiting for a go/)
  assert.match(page, new RegExp(`href="/admin/fleet/rollouts/${id}/resume"[^>]*data-confirm>Resume`))
  assert.match(page, new RegExp(`href="/admin/fleet/rollouts/${id}/halt"[^>]*data-confirm>Halt`))
  assert.match(page, /<td>canary<\/td><td>1<\/td><td>1<\/td><td>0<\/td><td>0<\/td>/, 'the canary wave: 1 tenant, done')
  assert.match(page, /<td>rollout<\/td><td>3<\/td><td>0<\/td><td>0<\/td><td>3<\/td>/, 'the rest pending')
  assert.doesNotMatch(page, /http-equiv="refresh"/, 'a waiting rollout is not looked at again')
  assert.deepEqual((await markerRuns(next, tenants)).reduce((a, b) => a + b, 0), 1)

  // The Fleet page lists it, with its waves and progress.
  const listed = (await client.get('/admin/fleet')).body
  assert.match(listed, new RegExp(`href="/admin/fleet/rollouts/${id}">migrate #${id}`))
  assert.match(listed, /canary: 1\/1/)
  assert.match(listed, /rollout: 0\/3/)
  assert.match(listed, /1 done, 0 failed, 3 pending, 0 skipped/)

  const confirm = await client.get(`/admin/fleet/rollouts/${id}/resume`)
  assert.match(confirm.body, /class="narrow confirm"/)
  assert.match(confirm.body, /Resume rollout/)
  const resumed = await client.post(`/admin/fleet/rollouts/${id}/resume`, {}, { from: `/admin/fleet/rollouts/${id}` })
  assert.equal(resumed.statusCode, 303)
  await until(async () => {
    page = (await client.get(`/admin/fleet/rollouts/${id}`)).body
    return page.includes('data-status="done"')
  }, { what: 'the rollout finishes' })
  assert.match(page, /4 done, 0 failed, 0 pending, 0 skipped/)
  assert.doesNotMatch(page, /data-confirm>(Resume|Halt)</, 'no buttons on a finished rollout')
  assert.deepEqual(await markerRuns(next, tenants), [1, 1, 1, 1], 'each tenant migrated once')

  // Resuming a finished rollout: FST_TENANCY_ROLLOUT_FINISHED's sentence as a notice.
  await client.post(`/admin/fleet/rollouts/${id}/resume`, {}, { from: `/admin/fleet/rollouts/${id}` })
  assert.match((await client.get(`/admin/fleet/rollouts/${id}`)).body, new RegExp(`Rollout ${id} is done already: start a new one to run its tenants again\\.`))
  assert.equal((await client.get('/admin/fleet/rollouts/999999')).statusCode, 404)
  assert.equal((await client.get('/admin/fleet/rollouts/nope')).statusCode, 404)

  const actions = (await sql<{ action: string }>(centralUrl, "select action from tenancy.admin_audit_log where action like 'fleet.rollout.%' order by id")).map((r) => r.action)
  assert.deepEqual(actions, ['fleet.rollout.start', 'fleet.rollout.resume'])
})

test('Halt stops a running rollout after its tenants in flight, the rest pending; Resume finishes it, no tenant migrated twice', async (t) => {
  let open!: () => void
  latch.gate = new Promise<void>((resolve) => { open = resolve })
  const secondBegun = new Promise<void>((resolve) => { latch.entered = resolve })
  latch.passed = 0
  // Registered before the apps' own closing, so a failing test does not leave a migration waiting at the gate.
  t.after(() => { open() })
  const { next, tenants, centralUrl } = await deploy(t, 6, gatedMarker)
  const client = await signedIn(next)
  const started = await client.post('/admin/fleet/rollouts/new', { concurrency: '1' }, { from: '/admin/fleet/rollouts/new' })
  const id = idOf(started.headers.location)
  await until(async () => (await next.tenancy.rollouts.get(id)).counts.done >= 1, { what: 'the first tenant is migrated' })
  await within(secondBegun, { timeoutMs: 20_000, what: 'the second tenant\'s migration begins' })
  const running = (await client.get(`/admin/fleet/rollouts/${id}`)).body
  assert.match(running, /data-status="running"/)
  assert.match(running, /http-equiv="refresh" content="2"/, 'a running rollout\'s page looks again without JavaScript')
  assert.match((await client.get(`/admin/fleet/rollouts/${id}/halt`)).body, /Halt rollout/)
  const halted = await client.post(`/admin/fleet/rollouts/${id}/halt`, {}, { from: `/admin/fleet/rollouts/${id}` })
  assert.equal(halted.statusCode, 303)
  // The tenant in flight may finish now.
  open()
  // The runner lets go of the rollout once its tenant in flight is done: nothing runs it while halted.
  await until(async () => { const r = await next.tenancy.rollouts.get(id); return r.counts.running === 0 && (r.owner === null || r.owner === '') }, { what: 'the runner stops' })
  const stopped = await next.tenancy.rollouts.get(id)
  assert.equal(stopped.status, 'halted')
  assert.match(stopped.haltReason ?? '', /halted by admin-/)
  assert.ok(stopped.counts.pending > 0, `tenants are left pending (${JSON.stringify(stopped.counts)})`)
  const doneAtHalt = stopped.counts.done
  assert.equal((await markerRuns(next, tenants)).reduce((a, b) => a + b, 0), doneAtHalt)
  const page = (await client.get(`/admin/fleet/rollouts/${id}`)).body
  assert.match(page, /Halted: halted by admin-/)
  assert.match(page, /data-confirm>Resume</)
  assert.doesNotMatch(page, /data-confirm>Halt</)

  // The runner the resume starts cannot take the lease while another transaction holds the row: the page it lands on still reads "halted".
  const holder = new pg.Client({ connectionString: centralUrl })
  holder.on('error', () => {})
  await holder.connect()
  await holder.query('begin')
  await holder.query('select 1 from tenancy.tenant_rollouts where id = $1 for update', [id])
  let landed: string
  try {
    await client.post(`/admin/fleet/rollouts/${id}/resume`, {}, { from: `/admin/fleet/rollouts/${id}` })
    landed = (await client.get(`/admin/fleet/rollouts/${id}`)).body
  } finally {
    await holder.query('commit')
    await holder.end()
  }
  assert.match(landed, /data-status="halted"/)
  assert.match(landed, /http-equiv="refresh" content="2"/, 'the page a resume lands on looks again, though the runner has not taken the rollout yet')
  await until(async () => (await next.tenancy.rollouts.get(id)).status, { is: (status) => status === 'done', timeoutMs: 30_000, what: 'the resumed rollout finishes' })
  assert.deepEqual(await markerRuns(next, tenants), [1, 1, 1, 1, 1, 1])
  const actions = (await sql<{ action: string }>(centralUrl, "select action from tenancy.admin_audit_log where action like 'fleet.rollout.%' order by id")).map((r) => r.action)
  assert.deepEqual(actions, ['fleet.rollout.start', 'fleet.rollout.halt', 'fleet.rollout.resume'])
})

test('without manage_tenants an admin gets 403 on the rollout pages and actions, sees no rollout buttons, and nothing is started', async (t) => {
  const { next } = await deploy(t, 2)
  const owner = await signedIn(next)
  const started = await owner.post('/admin/fleet/rollouts/new', { canary: '1' }, { from: '/admin/fleet/rollouts/new' })
  const id = idOf(started.headers.location)
  await until(async () => (await next.tenancy.rollouts.get(id)).status, { is: (status) => status === 'waiting', what: 'the rollout waits after its canary' })

  const limited = await signedIn(next, PERMISSIONS.filter((p) => p !== 'manage_tenants'))
  for (const url of ['/admin/fleet', '/admin/fleet/rollouts/new', `/admin/fleet/rollouts/${id}`, `/admin/fleet/rollouts/${id}/halt`, `/admin/fleet/rollouts/${id}/resume`]) {
    const res = await limited.get(url)
    assert.equal(res.statusCode, 403, url)
    assert.doesNotMatch(res.body, /Start a rollout|data-confirm>(Resume|Halt)</, url)
  }
  const home = await limited.get('/admin')
  const token = /name="_csrf" value="([^"]+)"/.exec(home.body)?.[1] as string
  for (const url of ['/admin/fleet/rollouts/new', `/admin/fleet/rollouts/${id}/halt`, `/admin/fleet/rollouts/${id}/resume`]) {
    assert.equal((await limited.post(url, { canary: '1' }, { csrf: token })).statusCode, 403, `POST ${url}`)
  }
  assert.doesNotMatch(home.body, /Start a rollout/)
  const after = await next.tenancy.rollouts.get(id)
  assert.equal(after.status, 'waiting', 'the refused resume and halt did nothing')
  assert.equal((await next.tenancy.rollouts.list()).total, 1, 'the refused start recorded nothing')
})

test('with strategy shared a rollout is refused on the form with the ledger\'s sentence, and Migrate all migrates the shared tables once', async (t) => {
  const { app } = await buildApp(t, { strategy: 'shared' }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  })
  const client = await signedIn(app)
  const refused = await client.post('/admin/fleet/rollouts/new', {}, { from: '/admin/fleet/rollouts/new' })
  assert.equal(refused.statusCode, 422)
  assert.match(refused.body, /Strategy shared migrates its shared tables once for every tenant/)
  const migrated = await client.post('/admin/fleet/migrate', {}, { from: '/admin/fleet' })
  assert.equal(migrated.headers.location, '/admin/fleet')
  assert.match((await client.get('/admin/fleet')).body, /Migrated the shared tables\./)
  assert.equal((await app.tenancy.rollouts.list()).total, 0)
})

test('Halt on a rollout halted already, and Halt or Resume on a finished one, say so and record nothing', async (t) => {
  const { next, centralUrl } = await deploy(t, 2)
  const client = await signedIn(next)
  const waiting = await next.tenancy.rollouts.start({ canary: 1 })
  await next.tenancy.rollouts.run(waiting.id)
  await next.tenancy.rollouts.halt(waiting.id)
  const page = `/admin/fleet/rollouts/${waiting.id}`
  const again = await client.post(`${page}/halt`, {}, { from: page })
  assert.equal(again.statusCode, 303)
  assert.match((await client.get(page)).body, new RegExp(`Rollout ${waiting.id} is halted already\\.`))
  const audits = async (): Promise<number> => Number((await sql(centralUrl, "select count(*)::int as n from tenancy.admin_audit_log where action = 'fleet.rollout.halt'"))[0]?.n)
  assert.equal(await audits(), 0)
  const done = await next.tenancy.rollouts.resume(waiting.id)
  assert.equal(done.status, 'done')
  for (const action of ['halt', 'resume']) {
    const confirm = await client.get(`/admin/fleet/rollouts/${done.id}/${action}`)
    assert.equal(confirm.statusCode, 303, action)
    assert.match((await client.get(String(confirm.headers.location))).body, new RegExp(`Rollout ${done.id} has finished \\(done\\); start a new rollout`))
  }
})
