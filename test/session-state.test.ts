import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { freshCentral, serverUrl, sql, type CentralDatabase } from './helpers/database.js'
import { APP_ROLE, prepareShared } from './helpers/shared.js'
import { startPgBouncer, type Bouncer } from './helpers/bouncer.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

const ATTEMPTS = 20

/**
 * Hostile SQL a tenant's route runs on its connection, each leaving session
 * state behind: a temporary table named like the tenant table (with a row of
 * its own), a WITH HOLD cursor over its rows, a prepared statement, and the
 * tenant setting and search_path set for the session, then a transaction
 * begun and left open. Statements the role may not run (no TEMP right) are skipped.
 */
const HOSTILE = [
  'create temp table if not exists projects (id int, title text, tenant_key uuid, created_at timestamptz)',
  "insert into pg_temp.projects (id, title, created_at) values (1, 'a-temp', now())",
  'declare leak cursor with hold for select title from projects',
  'prepare leak_plan as select title from projects',
  "select set_config('fastify_tenancy.tenant', current_setting('fastify_tenancy.tenant', true), false)",
  "select set_config('search_path', 'pg_temp, ' || current_setting('search_path'), false)",
  // Last, and never committed: a transaction left open on the connection (behind a transaction-mode pooler its server connection stays with it).
  'begin'
]

/**
 * What another tenant's route then does through `em.getKnex()` (raw knex,
 * past the ORM), on the same server connection: reads the table, fetches the
 * cursor, runs the prepared statement, inserts. Returns every title it saw and
 * the statements that failed.
 */
const PROBES = ['select title from projects', 'fetch all from leak', 'execute leak_plan']

function routes (app: FastifyInstance): void {
  app.post('/hostile', async (request) => {
    const knex = request.tenantEm.getKnex()
    for (const statement of HOSTILE) await knex.raw(statement).catch(() => {})
    return { ok: true }
  })
  app.post('/probe', async (request) => {
    const knex = request.tenantEm.getKnex()
    const titles: string[] = []
    // The tenant's first statement on the connection may fail: the reset in front of it must hold all the same.
    if ((request.query as { first?: string }).first === 'fail') await knex.raw('select 1/0').catch(() => {})
    for (const statement of PROBES) {
      try {
        const result = await knex.raw(statement)
        for (const row of result.rows as Array<{ title: string }>) titles.push(row.title)
      } catch {}
    }
    await knex.raw("insert into projects (title, created_at) values ('b-insert', now())")
    return titles
  })
}

async function seed (app: FastifyInstance, tenant: Tenant, title: string): Promise<void> {
  await app.tenancy.run(tenant, async (scope) => {
    scope.em.create(ProjectEntity, { title })
    await scope.em.flush()
  })
}

/** Twenty times: tenant a's hostile SQL, then tenant b's probes on the same connection; b sees only b's rows and writes only into b. */
async function assertNothingCrosses (app: FastifyInstance, a: Tenant, b: Tenant, rowsOf: (tenant: Tenant) => Promise<string[]>, probeUrl = '/probe'): Promise<void> {
  for (let i = 0; i < ATTEMPTS; i++) {
    assert.equal((await app.inject({ method: 'POST', url: '/hostile', headers: { 'x-tenant': a.identifier } })).statusCode, 200)
    const probe = await app.inject({ method: 'POST', url: probeUrl, headers: { 'x-tenant': b.identifier } })
    assert.equal(probe.statusCode, 200, probe.body)
    const seen = probe.json() as string[]
    assert.ok(seen.every((title) => title.startsWith('b-')), `attempt ${i + 1}: b saw ${JSON.stringify(seen)}`)
  }
  assert.deepEqual(await rowsOf(a), ['a-1'], 'nothing of b landed in a')
  assert.deepEqual(await rowsOf(b), ['b-1', ...Array.from({ length: ATTEMPTS }, () => 'b-insert')], 'every insert of b landed in b')
}

async function sharedWorld (
  t: Parameters<typeof buildApp>[0], central: CentralDatabase, url: (u: string) => string, extra: object = {}
): Promise<{ app: FastifyInstance, a: Tenant, b: Tenant, rowsOf: (tenant: Tenant) => Promise<string[]> }> {
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'shared', cache: { listen: false }, shared: { url: url(shared.url), poolSize: 1 }, ...extra }, routes, central)
  const a = await app.tenancy.create({ identifier: 'a' })
  const b = await app.tenancy.create({ identifier: 'b' })
  await seed(app, a, 'a-1')
  await seed(app, b, 'b-1')
  const rowsOf = async (tenant: Tenant): Promise<string[]> =>
    (await sql(central.url, 'select title from tenant_shared.projects where tenant_key = $1 order by id', [tenant.key])).map((r) => r.title as string)
  return { app, a, b, rowsOf }
}

async function schemaWorld (
  t: Parameters<typeof buildApp>[0], central: CentralDatabase, host: string, extra: object = {}
): Promise<{ app: FastifyInstance, a: Tenant, b: Tenant, rowsOf: (tenant: Tenant) => Promise<string[]> }> {
  // One connection for every schema tenant of the host.
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'schema', cache: { listen: false }, database: { hosts: { default: host }, maxConnections: 1 }, ...extra }, routes, central)
  const a = await app.tenancy.create({ identifier: 'a' })
  const b = await app.tenancy.create({ identifier: 'b' })
  await seed(app, a, 'a-1')
  await seed(app, b, 'b-1')
  const rowsOf = async (tenant: Tenant): Promise<string[]> =>
    (await sql(central.url, `select title from "${app.tenancy.tenants.databaseName(tenant)}".projects order by id`)).map((r) => r.title as string)
  return { app, a, b, rowsOf }
}

async function bouncerFor (t: Parameters<typeof buildApp>[0], central: CentralDatabase, reset = true): Promise<Bouncer> {
  const server = new URL(serverUrl())
  const users = [{ role: APP_ROLE, password: 'app-role-password' }, { role: decodeURIComponent(server.username), password: decodeURIComponent(server.password) }]
  // One server connection per database and role: every tenant's statement meets the last one's session.
  const bouncer = await startPgBouncer(central.url, users, 1, reset)
  t.after(async () => { await bouncer.stop() })
  return bouncer
}

test('[shared] temp tables, WITH HOLD cursors, prepared statements and session settings of one tenant never reach the next on the app\'s pool (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  const { app, a, b, rowsOf } = await sharedWorld(t, central, (u) => u)
  await assertNothingCrosses(app, a, b, rowsOf)
})

test('[shared] ... nor when the next tenant\'s first statement on the connection fails (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  const { app, a, b, rowsOf } = await sharedWorld(t, central, (u) => u)
  await assertNothingCrosses(app, a, b, rowsOf, '/probe?first=fail')
})

test('[shared] ... nor behind PgBouncer in transaction mode (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  await prepareShared(central)
  const bouncer = await bouncerFor(t, central)
  const { app, a, b, rowsOf } = await sharedWorld(t, central, bouncer.through)
  await assertNothingCrosses(app, a, b, rowsOf)
})

test('[schema] temp tables, WITH HOLD cursors, prepared statements and session settings of one tenant never reach the next on the app\'s pool (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  const { app, a, b, rowsOf } = await schemaWorld(t, central, central.url)
  await assertNothingCrosses(app, a, b, rowsOf)
})

test('[schema] ... nor when the next tenant\'s first statement on the connection fails (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  const { app, a, b, rowsOf } = await schemaWorld(t, central, central.url)
  await assertNothingCrosses(app, a, b, rowsOf, '/probe?first=fail')
})

test('[schema] ... nor behind PgBouncer in transaction mode (20 of 20)', { timeout: 180_000 }, async (t) => {
  const central = await freshCentral(t)
  const bouncer = await bouncerFor(t, central)
  const { app, a, b, rowsOf } = await schemaWorld(t, central, bouncer.through(central.url), { database: { hosts: { default: bouncer.through(central.url) }, maxConnections: 4, pooler: 'transaction' } })
  await assertNothingCrosses(app, a, b, rowsOf)
})

test('the plugin refuses to register behind a transaction-mode PgBouncer that keeps session state between clients (shared and schema)', { timeout: 120_000 }, async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const bouncer = await bouncerFor(t, central, false)
  await assert.rejects(buildApp(t, { strategy: 'shared', cache: { listen: false }, shared: { url: bouncer.through(shared.url) } }, () => {}, central),
    (error: { code?: string, message: string }) => error.code === 'FST_TENANCY_POOLER_RESET' && /server_reset_query_always = 1/.test(error.message))
  await assert.rejects(buildApp(t, { strategy: 'schema', cache: { listen: false }, database: { hosts: { default: bouncer.through(central.url) }, pooler: 'transaction' } }, () => {}, central),
    { code: 'FST_TENANCY_POOLER_RESET' })
})
