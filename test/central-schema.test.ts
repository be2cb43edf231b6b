import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { tenancyPlugin, CentralUserEntity } from '../server/index.js'
import { dropDatabases, serverUrl, sql, urlFor } from './helpers/database.js'
import { ProjectEntity, TEST_TENANT_SCHEMA, TenantUserCopyEntity } from './helpers/tenant-schema.js'
import { CENTRAL_TABLE_NAMES } from '../server/database/central-schema.js'

/** The app's tables in `public` as they are: columns, and rows. */
async function appTables (url: string): Promise<{ tables: string[], columns: unknown[], rows: unknown[] }> {
  const tables = (await sql<{ t: string }>(url, "select table_name as t from information_schema.tables where table_schema = 'public' order by 1")).map((r) => r.t)
  const columns = await sql(url, "select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = 'public' order by table_name, ordinal_position")
  const rows = []
  for (const table of tables) rows.push({ table, rows: await sql(url, `select to_jsonb(t) as r from public."${table}" t order by 1`) })
  return { tables, columns, rows }
}

test('the plugin shares a database whose public schema has the app\'s own users, domains and admins: it registers, migrates into tenancy, serves, and leaves them as they were', async (t) => {
  const name = `ft_shared_db_${randomBytes(4).toString('hex')}`
  const prefix = `${name}_t_`
  await sql(serverUrl(), `create database ${name}`)
  const url = urlFor(name)
  await sql(url, `
    create table users (id serial primary key, email text not null unique, name text);
    create table domains (id serial primary key, host text not null unique, verified boolean not null default false);
    create table admins (id serial primary key, login text not null);
    insert into users (email, name) values ('a@app.test', 'A'), ('b@app.test', 'B'), ('c@app.test', 'C');
    insert into domains (host) values ('app.test'), ('www.app.test');
    insert into admins (login) values ('root');`)
  const before = await appTables(url)

  const app = Fastify({ pluginTimeout: 60_000 })   // central migrations at register; avvio's 10 s is short on a loaded 2-core machine
  t.after(async () => {
    await app.close()
    await dropDatabases(serverUrl(), name, prefix)
  })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url, prefix },
    migrateCentral: true,
    identification: ['domain', 'subdomain'],
    cache: { listen: false },
    provisioning: { spares: 0 },
    sync: { mode: 'inline', resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
  })
  app.get('/projects', async (request) => ({ tenant: request.tenant?.identifier, projects: await request.tenantEm.count(ProjectEntity, {}) }))
  app.get('/signup', { config: { tenancy: 'central' } }, async () => ({ central: true }))
  await app.ready()

  // Ours are in schema tenancy, theirs where they were.
  assert.equal((await sql(url, "select count(*)::int as n from information_schema.tables where table_schema = 'tenancy'"))[0]?.n, CENTRAL_TABLE_NAMES.length)
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  await app.tenancy.domains.add(acme, 'shop.acme.test')
  const em = app.tenancy.orm.em.fork()
  const user = em.create(CentralUserEntity, { name: 'Ada', email: 'ada@example.test', password: 'x' } as never)
  await em.flush()
  await app.tenancy.sync!.attach('users', String((user as { globalId: string }).globalId), acme)

  const served = await app.inject({ url: '/projects', headers: { host: 'shop.acme.test' } })
  assert.equal(served.statusCode, 200, served.body)
  assert.deepEqual(served.json(), { tenant: 'acme', projects: 0 })
  assert.equal((await app.inject({ url: '/signup', headers: { host: 'localhost' } })).statusCode, 200)
  assert.equal((await app.inject({ url: '/projects', headers: { host: 'app.test' } })).statusCode, 404, 'the app\'s own domains row is not a tenant domain')
  assert.deepEqual(await sql(url, 'select domain from tenancy.domains order by domain'), [{ domain: 'acme.test' }, { domain: 'shop.acme.test' }])
  assert.deepEqual(await sql(url, 'select email from tenancy.users'), [{ email: 'ada@example.test' }])

  assert.deepEqual(await appTables(url), before, 'the app\'s users, domains and admins: the same tables, columns and rows')
})

test('database.schema renames the central schema', async (t) => {
  const name = `ft_landlord_${randomBytes(4).toString('hex')}`
  const url = urlFor(name)
  const app = Fastify({ pluginTimeout: 60_000 })   // central migrations at register; avvio's 10 s is short on a loaded 2-core machine
  t.after(async () => {
    await app.close()
    await dropDatabases(serverUrl(), name, `${name}_t_`)
  })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url, prefix: `${name}_t_`, schema: 'landlord' }, migrateCentral: true, identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 } })
  app.get('/who', async (request) => ({ tenant: request.tenant?.identifier }))
  await app.ready()
  await app.tenancy.create({ identifier: 'acme' })
  assert.deepEqual((await app.inject({ url: '/who', headers: { 'x-tenant': 'acme' } })).json(), { tenant: 'acme' })
  assert.deepEqual(await sql(url, 'select identifier from landlord.tenants'), [{ identifier: 'acme' }])
  assert.deepEqual(await sql(url, "select nspname from pg_namespace where nspname in ('tenancy', 'landlord')"), [{ nspname: 'landlord' }])
})
