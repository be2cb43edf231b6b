import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { buildApp } from './helpers/app.js'
import { freshCentral, serverUrl, sql, type CentralDatabase } from './helpers/database.js'
import { APP_ROLE, asRole, prepareShared } from './helpers/shared.js'
import { configFor, run } from './helpers/cli.js'
import { until } from './helpers/poll.js'
import { type Tenant } from '../server/index.js'
import { applyRls, createAppRole } from '../server/database/shared/rls-policies.js'
import { harden, hardeningGaps } from '../server/database/shared/rls-hardening.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

/**
 * What one tenant's SQL can learn about, or do to, another tenant's work
 * through the role they all share: ids, other sessions' statements and text.
 */

type App = Awaited<ReturnType<typeof buildApp>>['app']

async function world (t: TestContext): Promise<{ app: App, central: CentralDatabase, acme: Tenant, globex: Tenant }> {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { strategy: 'shared', shared: { url: shared.url }, cache: { listen: false } }, () => {}, central)
  return { app, central, acme: await app.tenancy.create({ identifier: 'acme' }), globex: await app.tenancy.create({ identifier: 'globex' }) }
}

async function inTenant (app: App, tenant: Tenant, text: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  let rows: Array<Record<string, unknown>> = []
  await app.tenancy.run(tenant, async (scope) => { rows = await scope.em.execute(text, params) })
  return rows
}

/** The advisory lock a victim's statement waits on while the test holds it. */
const LATCH = 4242

interface Waiting { pid: number, done: Promise<unknown>, release: () => Promise<void> }

/**
 * Starts a statement of `tenant` that waits for the advisory lock LATCH, which
 * the test holds (`text` takes the lock with ?): it runs until `release()`, so
 * whatever the test does meanwhile happens while it runs. Returns its backend
 * once PostgreSQL shows it waiting (seen by the central role).
 */
async function waiting (app: App, central: CentralDatabase, tenant: Tenant, text: string): Promise<Waiting> {
  const holder = new pg.Client({ connectionString: central.url })
  await holder.connect()
  // Ending the holder's session lets go of the lock.
  const release = async (): Promise<void> => { await holder.end().catch(() => {}) }
  try {
    await holder.query('select pg_advisory_lock($1)', [LATCH])
    const done = inTenant(app, tenant, text, [LATCH])
    done.catch(() => {})
    const pid = await until(async () => Number((await sql(central.url, "select pid from pg_stat_activity where usename = $1 and wait_event = 'advisory'", [APP_ROLE]))[0]?.pid ?? 0),
      { timeoutMs: 10_000, what: 'the waiting statement shows in pg_stat_activity' })
    return { pid, done, release }
  } catch (error) {
    await release()
    throw error
  }
}

test('an explicit id tells a tenant nothing about another tenant\'s rows: the id another tenant has is free, and each tenant finds its own row by it', async (t) => {
  const { app, acme, globex } = await world(t)
  let id = 0
  await app.tenancy.run(acme, async (scope) => {
    const project = scope.em.create(ProjectEntity, { title: 'acme project' })
    await scope.em.flush()
    id = project.id as number
  })
  // Before per-tenant primary keys this was 23505: globex learned that some tenant had project `id`.
  await inTenant(app, globex, "insert into projects (id, title) values (?, 'globex project')", [id])
  for (const [tenant, title] of [[acme, 'acme project'], [globex, 'globex project']] as const) {
    await app.tenancy.run(tenant, async (scope) => {
      assert.equal((await scope.em.fork().findOneOrFail(ProjectEntity, { id })).title, title)
    })
  }
  // Inside one tenant the id is still unique.
  await assert.rejects(inTenant(app, globex, "insert into projects (id, title) values (?, 'twice')", [id]), /duplicate key/)
})

test('a tenant cannot cancel or terminate another tenant\'s statement (pg_cancel_backend, pg_terminate_backend), though both run as one role', async (t) => {
  const { app, central, acme, globex } = await world(t)
  const victim = await waiting(app, central, acme, 'select pg_advisory_xact_lock(?)::text as waited')
  try {
    await assert.rejects(inTenant(app, globex, 'select pg_cancel_backend(?)', [victim.pid]), /permission denied for function pg_cancel_backend/)
    await assert.rejects(inTenant(app, globex, 'select pg_terminate_backend(?)', [victim.pid]), /permission denied for function pg_terminate_backend/)
  } finally {
    await victim.release()
  }
  assert.deepEqual(await victim.done, [{ waited: '' }], 'the statement ran to its end')
})

test('pg_stat_activity shows a tenant no statement text of the other sessions of the shared role (values inlined by the ORM, the tenant setting)', async (t) => {
  const { app, central, acme, globex } = await world(t)
  const victim = await waiting(app, central, acme, "select pg_advisory_xact_lock(?), 'acme-secret-marker' as marker")
  let seen: Array<Record<string, unknown>>
  try {
    seen = await inTenant(app, globex, 'select pid, query from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()')
  } finally {
    await victim.release()
  }
  assert.ok(seen.some((r) => r.pid === victim.pid), 'globex sees that the session exists')
  assert.deepEqual(seen.filter((r) => /acme-secret-marker|fastify_tenancy\.tenant/.test(String(r.query))), [])
  await victim.done
})

test('tenants:rls --check reports what only a superuser can take from the app role when the installer could not, and session defaults a tenant may have left; tenants:rls as a superuser takes the first', async (t) => {
  const central = await freshCentral(t)
  await prepareShared(central)
  const role = `ft_app_${randomBytes(4).toString('hex')}`
  t.after(async () => { await sql(serverUrl(), `drop role if exists "${role}"`).catch(() => {}) })
  await createAppRole(central.url, role, 'pw')
  const centralRole = decodeURIComponent(new URL(central.url).username)
  await applyRls({ url: central.url, schema: 'tenant_shared', centralRole, appRole: role })
  // Put both back as a fresh database and role have them.
  await sql(central.url, `grant execute on function pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) to public; alter role "${role}" reset track_activities`)
  // An installer that is no superuser: the hardening statements are refused or do nothing, and nothing fails.
  const weak = new pg.Client({ connectionString: asRole(central.url, role, 'pw') })
  await weak.connect()
  try {
    await weak.query('begin')
    await harden(weak, role)
    await weak.query('commit')
    assert.equal((await hardeningGaps(weak, role)).length, 2)
  } finally {
    await weak.end()
  }
  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(asRole(central.url, role, 'pw'))} }`)
  const before = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(before.code, 0, before.stdout + before.stderr)
  assert.match(before.stdout, /Left to a superuser: .*may cancel and terminate other tenants' statements.*`REVOKE EXECUTE ON FUNCTION pg_catalog\.pg_cancel_backend\(integer\), pg_catalog\.pg_terminate_backend\(integer, bigint\) FROM PUBLIC`/)
  assert.match(before.stdout, new RegExp(`Left to a superuser: .*pg_stat_activity.*\`ALTER ROLE "${role}" SET track_activities = off\``))
  const json = JSON.parse((await run(['--config', config, 'tenants:rls', '--check', '--json'])).stdout) as { hardening: string[] }
  assert.equal(json.hardening.length, 2)
  assert.equal((await run(['--config', config, 'tenants:rls'])).code, 0)
  const after = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(after.code, 0)
  assert.doesNotMatch(after.stdout, /Left to a superuser/)

  // A role may set its own session defaults: one tenant's SQL leaves them for every later connection, and --check names them.
  // (PostgreSQL keeps custom settings such as fastify_tenancy.tenant out of a role's own defaults; search_path and the like it allows.)
  await assert.rejects(sql(asRole(central.url, role, 'pw'), `alter role "${role}" set fastify_tenancy.tenant = 'planted'`), /permission denied to set parameter/)
  await sql(asRole(central.url, role, 'pw'), `alter role "${role}" set search_path = pg_temp, tenant_shared; alter role "${role}" set work_mem = '64kB'`)
  const planted = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(planted.code, 0)
  assert.match(planted.stdout, new RegExp(`session defaults \\(search_path, work_mem\\).*\`ALTER ROLE "${role}" RESET search_path\` and \`ALTER ROLE "${role}" RESET work_mem\``))
})
