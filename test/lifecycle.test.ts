import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql, urlFor } from './helpers/database.js'
import { type ProvisioningStep, type TenancyEventName, type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import type { FastifyInstance } from 'fastify'
import { tenancyRuntime } from '../server/tenancy.js'

const STRATEGIES = ['database', 'schema'] as const

/** Whether the tenant's database (or schema) exists, and the tables in it. */
async function storage (app: FastifyInstance, central: { url: string }, tenant: Pick<Tenant, 'key' | 'databaseHost'>): Promise<{ exists: boolean, tables: string[] }> {
  const target = app.tenancy.tenants.target(tenant)
  if (target.schema === null) {
    const exists = (await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [target.name])).length === 1
    if (!exists) return { exists, tables: [] }
    const tables = await sql<{ t: string }>(urlFor(target.name), "select table_name as t from information_schema.tables where table_schema = 'public' order by 1")
    return { exists, tables: tables.map((r) => r.t) }
  }
  const exists = (await sql(central.url, 'select 1 from pg_namespace where nspname = $1', [target.name])).length === 1
  const tables = await sql<{ t: string }>(central.url, 'select table_name as t from information_schema.tables where table_schema = $1 order by 1', [target.name])
  return { exists, tables: tables.map((r) => r.t) }
}

// The test app's tables and the one migrations table: nothing of syncing's, which is off.
const TABLES = ['fastify_tenancy_migrations', 'projects', 'users']

for (const strategy of STRATEGIES) {
  test(`[${strategy}] a created tenant has its own storage with every tenant migration, and the events come in pairs`, async (t) => {
    const events: TenancyEventName[] = []
    const seeded: string[] = []
    const { app, central } = await buildApp(t, {
      strategy,
      provisioning: {
        seeder: async (scope) => {
          seeded.push(String(scope.tenant.identifier))
          scope.em.create(ProjectEntity, { title: `welcome ${scope.tenant.identifier}` })
          await scope.em.flush()
        }
      }
    })
    for (const name of ['tenant.creating', 'tenant.created', 'database.creating', 'database.created', 'tenant.migrating', 'tenant.migrated', 'tenant.seeding', 'tenant.seeded', 'tenant.failed'] as const) {
      app.tenancy.events.on(name, () => { events.push(name) })
    }
    const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
    assert.equal(acme.status, 'active')
    assert.deepEqual(events, ['tenant.creating', 'database.creating', 'database.created', 'tenant.migrating', 'tenant.migrated', 'tenant.seeding', 'tenant.seeded', 'tenant.created'])
    assert.deepEqual(await storage(app, central, acme), { exists: true, tables: TABLES })
    assert.deepEqual((await app.tenancy.migrationStatus(acme)).pending, [])
    assert.deepEqual(seeded, ['acme'])
    const titles = await app.tenancy.run(acme, async (scope) => (await scope.em.find(ProjectEntity, {})).map((p) => p.title))
    assert.deepEqual(titles, ['welcome acme'])
  })

  for (const where of ['create-database', 'migrate', 'seed'] as const) {
    test(`[${strategy}] a failure at ${where} leaves no database, a failed tenant with the reason, and a retry succeeds`, async (t) => {
      let fail = true
      const failed: string[] = []
      const { app, central } = await buildApp(t, {
        strategy,
        provisioning: { seeder: async () => { if (where === 'seed' && fail) throw new Error('seeder broke') } }
      })
      app.tenancy.events.on('database.created', () => { if (where === 'create-database' && fail) throw new Error('disk full') })
      app.tenancy.events.on('tenant.migrated', () => { if (where === 'migrate' && fail) throw new Error('migration broke') })
      app.tenancy.events.on('tenant.failed', (e) => { failed.push(String(e.step)) })
      await assert.rejects(app.tenancy.create({ identifier: 'acme' }), (e: any) => e.code === 'FST_TENANCY_PROVISIONING_FAILED' && e.message.includes(`at step "${where}"`))
      await tenancyRuntime(app.tenancy).idle()
      const tenant = await app.tenancy.tenants.find('acme')
      assert.equal(tenant?.status, 'failed')
      const reason = (await sql(central.url, 'select failure_reason from tenancy.tenants where key = $1', [tenant!.key]))[0]?.failure_reason
      assert.match(String(reason), new RegExp(`^${where}: `))
      assert.equal((await storage(app, central, tenant!)).exists, false, 'nothing half-made is left')
      assert.deepEqual(failed, [where])
      fail = false
      const retried = await app.tenancy.provision(tenant!)
      assert.equal(retried.status, 'active')
      assert.deepEqual(await storage(app, central, tenant!), { exists: true, tables: TABLES })
    })
  }

  test(`[${strategy}] delete leaves nothing behind, and deleting twice is harmless`, async (t) => {
    const { app, central } = await buildApp(t, { strategy, identification: ['header'] }, (a) => {
      a.get('/n', async (request) => ({ n: await request.tenantEm.count(ProjectEntity, {}) }))
    })
    const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test', 'www.acme.test'] })
    await sql(central.url, "insert into tenancy.users (global_id, name, email, password) values ('g1', 'U', 'u@x.test', 'p')")
    await sql(central.url, "insert into tenancy.tenant_users (tenant_key, global_user_id) values ($1, 'g1')", [acme.key])
    assert.equal((await app.inject({ url: '/n', headers: { 'x-tenant': 'acme' } })).statusCode, 200, 'its pool is open')
    await app.tenancy.delete(acme)
    assert.equal((await storage(app, central, acme)).exists, false)
    for (const table of ['tenants', 'domains', 'tenant_users']) {
      const column = table === 'tenants' ? 'key' : 'tenant_key'
      assert.deepEqual(await sql(central.url, `select 1 from tenancy.${table} where ${column} = $1`, [acme.key]), [], table)
    }
    await app.tenancy.delete(acme)
    assert.equal((await app.inject({ url: '/n', headers: { 'x-tenant': 'acme' } })).statusCode, 404)
  })
}

test('a user step runs in the pipeline, and an existing database is refused unless adopted', async (t) => {
  const ran: string[] = []
  const audit: ProvisioningStep = { name: 'audit', run: async (ctx) => { ran.push(ctx.tenant.identifier) } }
  const { app, central } = await buildApp(t, { provisioning: { steps: (defaults) => [...defaults, audit] } })
  await app.tenancy.create({ identifier: 'acme' })
  assert.deepEqual(ran, ['acme'])

  const key = '01a20000-0000-7000-8000-0000000000aa'
  const name = app.tenancy.tenants.databaseName({ key })
  await sql(serverUrl(), `create database "${name}"`)
  await sql(urlFor(name), 'create table keep_me (id int)')
  await assert.rejects(app.tenancy.create({ identifier: 'globex', key }), (e: any) => e.code === 'FST_TENANCY_PROVISIONING_FAILED' && /exists already/.test(e.message))
  assert.equal((await sql(urlFor(name), "select count(*)::int as n from information_schema.tables where table_name = 'keep_me'"))[0]?.n, 1, 'the existing database is untouched')
  await sql(central.url, 'delete from tenancy.tenants where key = $1', [key])
  const adopted = await app.tenancy.create({ identifier: 'globex', key, adopt: true })
  assert.equal(adopted.status, 'active')
  assert.deepEqual((await app.tenancy.migrationStatus(adopted)).pending, [])
  assert.equal((await sql(urlFor(name), "select count(*)::int as n from information_schema.tables where table_name = 'keep_me'"))[0]?.n, 1)
})

test('migrate and rollback fan out with bounded concurrency, filter tenants, and keep going past a failure', async (t) => {
  const { app } = await buildApp(t)
  const tenants: Tenant[] = []
  for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) tenants.push(await app.tenancy.create({ identifier: id }))
  const back = await app.tenancy.rollback({ tenants: ['a1', tenants[1]!.key], concurrency: 2 })
  assert.deepEqual(back.map((r) => [r.identifier, r.ok, r.migrations]), [['a1', true, ['Migration20261122000001_tenant']], ['a2', true, ['Migration20261122000001_tenant']]])
  const skipped = await app.tenancy.migrate({ skipTenants: ['a2'] })
  assert.deepEqual(skipped.map((r) => [r.identifier, r.migrations.length]), [['a1', 1], ['a3', 0], ['a4', 0], ['a5', 0]])
  assert.equal((await app.tenancy.migrationStatus(tenants[1]!)).pending.length, 1, 'a2 was skipped')
  await assert.rejects(app.tenancy.migrate({ tenants: ['nobody'] }), (e: any) => e.code === 'FST_TENANCY_TENANT_NOT_FOUND')
  // One broken tenant database does not stop the others.
  await sql(serverUrl(), `drop database "${app.tenancy.tenants.databaseName(tenants[2]!)}" with (force)`)
  const results = await app.tenancy.migrate({ concurrency: 3 })
  assert.deepEqual(results.map((r) => [r.identifier, r.ok]), [['a1', true], ['a2', true], ['a3', false], ['a4', true], ['a5', true]])
  assert.match(String(results[2]?.error), /does not exist/)
  assert.equal((await app.tenancy.migrationStatus(tenants[1]!)).pending.length, 0)
})

for (const strategy of ['database', 'shared'] as const) {
  test(`[${strategy}] create() resolves with the tenant as the central database has it, its first domain primary`, async (t) => {
    const { app } = await buildApp(t, { strategy })
    const created = await app.tenancy.create({ identifier: 'acme', name: 'Acme Inc', domains: ['acme.test', 'acme-two.test'], data: { plan: 'pro' } })
    const found = await app.tenancy.tenants.find(created.key)
    assert.ok(found !== null)
    assert.equal(created.status, 'active')
    assert.deepEqual({ ...created }, { ...found })
    assert.deepEqual((await app.tenancy.domains.list(created)).map((d) => `${d.domain}${d.primary ? '*' : ''}`), ['acme.test*', 'acme-two.test'])
  })
}
