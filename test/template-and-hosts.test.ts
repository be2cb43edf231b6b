import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { buildApp } from './helpers/app.js'
import { serverUrl, sql, urlFor } from './helpers/database.js'
import { startEmbeddedPostgres, type EmbeddedServer } from '../server/demo/embedded-postgres.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import { tenancyRuntime } from '../server/tenancy.js'

/** Tables, columns, indexes and constraints of a database, with its own name taken out. */
async function catalog (url: string): Promise<unknown> {
  const columns = await sql(url, `select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns
    where table_schema = 'public' order by table_name, column_name`)
  const indexes = await sql(url, "select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by tablename, indexname")
  const constraints = await sql(url, `select conrelid::regclass::text as tbl, conname, pg_get_constraintdef(oid) as def from pg_constraint
    where connamespace = 'public'::regnamespace order by 1, 2`)
  return { columns, indexes, constraints }
}

test('the template path and the migration path give the same schema', async (t) => {
  const viaTemplate = await buildApp(t, { provisioning: { template: true } })
  const viaMigrations = await buildApp(t, { provisioning: { template: false } }, () => {}, viaTemplate.central)
  const a = await viaTemplate.app.tenancy.create({ identifier: 'from-template' })
  const b = await viaMigrations.app.tenancy.create({ identifier: 'from-migrations' })
  const one = await catalog(urlFor(viaTemplate.app.tenancy.tenants.databaseName(a)))
  const two = await catalog(urlFor(viaMigrations.app.tenancy.tenants.databaseName(b)))
  assert.ok(JSON.stringify(one).includes('projects'))
  assert.deepEqual(one, two)
})

test('the template is a marked template database, and spares made from it are taken by new tenants and made again', async (t) => {
  const { app, central } = await buildApp(t, { provisioning: { spares: 2 } })
  await app.tenancy.create({ identifier: 'first' })
  await tenancyRuntime(app.tenancy).idle()
  const template = await sql(serverUrl(), "select datistemplate, shobj_description(oid, 'pg_database') as fingerprint from pg_database where datname = $1", [`${central.prefix}template`])
  assert.equal(template[0]?.datistemplate, true)
  assert.match(String(template[0]?.fingerprint), /^[0-9a-f]{16}$/)
  const spares = async (): Promise<string[]> => (await sql<{ datname: string }>(serverUrl(), 'select datname from pg_database where starts_with(datname, $1) order by 1', [`${central.prefix}spare_`])).map((r) => r.datname)
  const before = await spares()
  assert.equal(before.length, 2)
  const second = await app.tenancy.create({ identifier: 'second' })
  const left = await spares()
  assert.equal(left.length, 1, 'one spare was taken by renaming it')
  assert.ok(before.includes(left[0] as string))
  await tenancyRuntime(app.tenancy).idle()
  assert.equal((await spares()).length, 2, 'and replaced in the background')
  assert.deepEqual((await app.tenancy.migrationStatus(second)).pending, [])
})

let second: EmbeddedServer | undefined
after(async () => { await second?.stop() })

test('with two database hosts, tenants land on both, are served from the right one, and migrate on both', async (t) => {
  second = await startEmbeddedPostgres({ dataDir: join('.tmp', `hosts-pg-${process.pid}`) })
  const hosts = { one: serverUrl(), two: second.url }
  const { app, central } = await buildApp(t, { identification: ['header'], database: { hosts } }, (a) => {
    a.get('/where', async (request) => ({ tenant: request.tenant?.identifier, db: (await request.tenantEm.getConnection().execute('select current_database() as db, inet_server_port() as port'))[0] }))
  })
  const made = []
  for (const id of ['h1', 'h2', 'h3', 'h4']) made.push(await app.tenancy.create({ identifier: id }))
  const placed = await sql(central.url, 'select identifier, database_host from tenancy.tenants order by identifier')
  assert.deepEqual(placed.map((r) => r.database_host), ['one', 'two', 'one', 'two'], 'the host with the fewest tenants gets the next one')
  for (const tenant of made) {
    const host = tenant.databaseHost as 'one' | 'two'
    const exists = await sql(hosts[host], 'select 1 from pg_database where datname = $1', [app.tenancy.tenants.databaseName(tenant)])
    assert.equal(exists.length, 1, `${tenant.identifier} on ${host}`)
    const res = (await app.inject({ url: '/where', headers: { 'x-tenant': tenant.identifier } })).json()
    assert.equal(res.db.db, app.tenancy.tenants.databaseName(tenant))
    assert.equal(Number(res.db.port), Number(new URL(hosts[host]).port))
  }
  await app.tenancy.run(made[1]!, async (scope) => { scope.em.create(ProjectEntity, { title: 'on two' }); await scope.em.flush() })
  const back = await app.tenancy.rollback({ concurrency: 2 })
  assert.ok(back.every((r) => r.ok && r.migrations.length === 1))
  const results = await app.tenancy.migrate({ concurrency: 2 })
  assert.deepEqual(results.map((r) => [r.identifier, r.ok, r.migrations.length]), [['h1', true, 1], ['h2', true, 1], ['h3', true, 1], ['h4', true, 1]])
})

test('a placement function of your own chooses the host', async (t) => {
  assert.ok(second !== undefined)
  const { app } = await buildApp(t, { database: { hosts: { one: serverUrl(), two: second.url } }, provisioning: { placement: () => 'two' } })
  const a = await app.tenancy.create({ identifier: 'p1' })
  const b = await app.tenancy.create({ identifier: 'p2' })
  assert.deepEqual([a.databaseHost, b.databaseHost], ['two', 'two'])
  await app.tenancy.delete(a)
  assert.deepEqual(await sql(second.url, 'select 1 from pg_database where datname = $1', [app.tenancy.tenants.databaseName(a)]), [])
})
