import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'
import { APP_ROLE, prepareShared } from './helpers/shared.js'
import { tenancyPlugin, type Tenant } from '../server/index.js'
import { readSecret } from '../server/database/shared/rls-policies.js'
import { signProof } from '../server/database/shared/tenant-proof.js'
import { tenancyRuntime } from '../server/tenancy.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

/** Anything shaped like a tenant proof or a signed tenant value: a key followed by a signature. */
const PROOF_SHAPED = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-f.]{64,}/g

async function seed (app: { tenancy: { run: (t: Tenant, fn: (s: any) => Promise<void>) => Promise<void> } }, tenant: Tenant, titles: string[]): Promise<void> {
  await app.tenancy.run(tenant, async (scope) => {
    for (const title of titles) scope.em.create(ProjectEntity, { title })
    await scope.em.flush()
  })
}

test('tenant A\'s SQL reads pg_stat_activity while tenant B works and finds nothing that reaches B\'s rows', { timeout: 120_000 }, async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const seen = new Set<string>()
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'shared', shared: { url: shared.url, poolSize: 6 } }, (a) => {
    a.get('/projects', async (request) => (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title))
    // Hostile SQL of one tenant's route: every statement of its role's other sessions, as PostgreSQL shows them.
    a.get('/spy', async (request) => {
      const rows = await request.tenantEm.execute('select query from pg_stat_activity where usename = current_user and pid <> pg_backend_pid()')
      for (const row of rows) seen.add(String(row.query))
      return rows.length
    })
    // Then it tries what it found: as a session or transaction setting, as a proof, and the statements themselves.
    a.post('/replay', async (request) => {
      const { token, statement } = request.body as { token?: string, statement?: string }
      const em = request.tenantEm
      const found: string[] = []
      const titles = async (): Promise<void> => { for (const r of await em.execute('select title from projects')) found.push(String(r.title)) }
      if (token !== undefined) {
        for (const local of [true, false]) {
          try {
            await em.transactional(async (tx) => {
              await tx.execute(`select set_config('fastify_tenancy.tenant', ?, ${String(local)})`, [token])
              for (const r of await tx.execute('select title from projects')) found.push(String(r.title))
            })
          } catch {}
        }
        // The setting and the read in one text, after whatever the statement is sent with.
        try {
          const results = await em.execute(`select set_config('fastify_tenancy.tenant', '${token.replaceAll("'", "''")}', true); select title from projects`) as unknown[]
          for (const r of results.flat(2) as Array<{ title?: unknown }>) if (typeof r?.title === 'string') found.push(r.title)
        } catch {}
        try {
          await em.transactional(async (tx) => {
            await tx.execute('select fastify_tenancy_rls.enter(?)', [token])
            for (const r of await tx.execute('select title from projects')) found.push(String(r.title))
          })
        } catch {}
        await titles()
      }
      if (statement !== undefined) {
        try { for (const r of await em.execute(statement)) if (typeof r.title === 'string') found.push(r.title) } catch {}
      }
      return found
    })
  }, central)
  const attacker = await app.tenancy.create({ identifier: 'attacker' })
  const victim = await app.tenancy.create({ identifier: 'victim' })
  await seed(app, attacker, ['mine'])
  await seed(app, victim, ['secret-1', 'secret-2'])
  // The victim works while the attacker watches, until the watcher has seen the victim's statements.
  let spied = 0
  for (let round = 0; round < 200 && ![...seen].some((q) => /projects/.test(q)); round++) {
    const victims = Array.from({ length: 4 }, async () => await app.inject({ url: '/projects', headers: { 'x-tenant': 'victim' } }))
    spied += Number((await app.inject({ url: '/spy', headers: { 'x-tenant': 'attacker' } })).body)
    await Promise.all(victims)
  }
  if (!(spied > 0 && [...seen].some((q) => /projects/.test(q)))) {
    // With a superuser central role the plugin turns track_activities off for the app role (rls-hardening): then there is nothing to read at all.
    const [role] = await sql<{ off: boolean }>(central.url, "select exists (select 1 from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = $1 and 'track_activities=off' = any(s.setconfig)) as off", [APP_ROLE])
    assert.equal(role?.off, true, 'the attacker saw no statements of other sessions only because its role does not track them')
  }
  const tokens = new Set<string>()
  for (const query of seen) for (const match of query.matchAll(PROOF_SHAPED)) tokens.add(match[0])
  for (const payload of [...[...tokens].map((token) => ({ token })), ...[...seen].map((statement) => ({ statement }))]) {
    const res = await app.inject({ method: 'POST', url: '/replay', headers: { 'x-tenant': 'attacker' }, payload })
    assert.equal(res.statusCode, 200)
    assert.ok(!(res.json() as string[]).some((title) => title.startsWith('secret')), `the victim's rows were reached with ${JSON.stringify(payload)}`)
  }
  assert.deepEqual([...tokens], [], 'no query text holds a proof')
})

test('a tenant statement that fails: neither the 500 body nor the log holds its proof', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'trace', stream: new Writable({ write (chunk, _e, done) { lines.push(chunk.toString()); done() } }) } })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix, debug: true }, strategy: 'shared', shared: { url: shared.url }, identification: ['header'] })
  app.get('/fail', async (request) => await request.tenantEm.execute('select 1 / 0 from projects'))
  app.get('/fail-knex', async (request) => await request.tenantEm.getKnex().raw('select title from no_such_table'))
  await app.ready()
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await seed(app, acme, ['a1'])
  for (const url of ['/fail', '/fail-knex']) {
    const res = await app.inject({ url, headers: { 'x-tenant': 'acme' } })
    assert.equal(res.statusCode, 500)
    assert.doesNotMatch(res.body, PROOF_SHAPED)
    assert.doesNotMatch(res.body, /set_config|fastify_tenancy_rls/)
  }
  const log = lines.join('')
  assert.match(log, /division by zero|no_such_table/, 'the failures were logged')
  assert.doesNotMatch(log, PROOF_SHAPED)
})

test('a proof copied to a session setting by a tenant\'s SQL names nobody in the next transaction on that connection', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'shared', shared: { url: shared.url, poolSize: 1 } }, (a) => {
    a.get('/keep', async (request) => await request.tenantEm.execute("select set_config('fastify_tenancy.tenant', current_setting('fastify_tenancy.tenant'), false) as kept"))
    a.get('/knex', async (request) => (await request.tenantEm.getKnex().raw('select title from projects order by title')).rows.map((r: { title: string }) => r.title))
    a.post('/knex', async (request) => { await request.tenantEm.getKnex().raw("insert into projects (title, created_at) values ('from-b', now())"); return { ok: true } })
  }, central)
  const a = await app.tenancy.create({ identifier: 'a' })
  const b = await app.tenancy.create({ identifier: 'b' })
  await seed(app, a, ['a1'])
  await seed(app, b, ['b1'])
  const kept = (await app.inject({ url: '/keep', headers: { 'x-tenant': 'a' } })).json() as Array<{ kept: string }>
  assert.match(kept[0]?.kept ?? '', new RegExp(`^${a.key}\\.`), 'tenant a copied its value to the session')
  // The one connection of the pool, in b's request: b's rows, and b's insert lands in b.
  assert.deepEqual((await app.inject({ url: '/knex', headers: { 'x-tenant': 'b' } })).json(), ['b1'])
  assert.equal((await app.inject({ method: 'POST', url: '/knex', headers: { 'x-tenant': 'b' } })).statusCode, 200)
  // The same connection with no tenant at all (nothing proven): the copied value names nobody.
  await app.inject({ url: '/keep', headers: { 'x-tenant': 'a' } })
  const runtime = tenancyRuntime(app.tenancy)
  const lease = runtime.connections.lease(app.tenancy.tenants.target(a))
  try {
    assert.deepEqual(await lease.em.getConnection().execute('select title from tenant_shared.projects'), [])
  } finally {
    lease.release()
  }
  assert.deepEqual((await sql(central.url, 'select tenant_key::text as k, title from tenant_shared.projects order by title')).map((r) => [r.k === a.key ? 'a' : r.k === b.key ? 'b' : '?', r.title]), [['a', 'a1'], ['b', 'b1'], ['b', 'from-b']])
})

test('the database refuses a proof that is forged, of another shape, or expired', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { strategy: 'shared', shared: { url: shared.url } }, () => {}, central)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await seed(app, acme, ['a1'])
  const secret = await readSecret(central.url)
  const now = Date.now() / 1000
  const good = signProof(secret, acme.key, now + 60)
  assert.deepEqual(await sqlInTransaction(shared.url, good), [{ title: 'a1' }])
  for (const bad of [
    signProof(secret, acme.key, now - 5),
    signProof('00'.repeat(32), acme.key, now + 60),
    good.slice(0, -1) + (good.endsWith('0') ? '1' : '0'),
    `${acme.key}.${good.slice(37)}x`,
    acme.key
  ]) {
    await assert.rejects(sqlInTransaction(shared.url, bad), (error: { code?: string, message: string }) => {
      assert.equal(error.code, '42501')
      assert.doesNotMatch(error.message, PROOF_SHAPED)
      return true
    })
  }
})

test('a proven value kept as a session setting is dead in the next transaction of the same session', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { strategy: 'shared', shared: { url: shared.url } }, () => {}, central)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await seed(app, acme, ['a1'])
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: shared.url })
  await client.connect()
  try {
    await client.query('begin')
    await client.query('select fastify_tenancy_rls.enter($1)', [signProof(await readSecret(central.url), acme.key, Date.now() / 1000 + 60)])
    const kept = (await client.query("select set_config('fastify_tenancy.tenant', current_setting('fastify_tenancy.tenant'), false) as v")).rows[0]?.v as string
    assert.deepEqual((await client.query('select title from tenant_shared.projects')).rows, [{ title: 'a1' }])
    await client.query('commit')
    assert.equal((await client.query("select current_setting('fastify_tenancy.tenant') as v")).rows[0]?.v, kept, 'the session kept the value')
    assert.deepEqual((await client.query('select title from tenant_shared.projects')).rows, [], 'and it names nobody now')
    await assert.rejects(client.query("insert into tenant_shared.projects (title, created_at) values ('x', now())"), /null value|row-level security/)
  } finally {
    await client.end()
  }
})

/** Proves `proof` in a transaction of its own and reads the projects it then sees. */
async function sqlInTransaction (url: string, proof: string): Promise<Array<Record<string, unknown>>> {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('begin')
    await client.query('select fastify_tenancy_rls.enter($1)', [proof])
    return (await client.query('select title from tenant_shared.projects')).rows
  } finally {
    await client.end()
  }
}
