import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Migration } from '@mikro-orm/migrations'
import { buildApp } from './helpers/app.js'
import { freshCentral, serverUrl, sql, urlFor } from './helpers/database.js'
import { TenantMigrator } from '../server/database/tenant-migrator.js'
import { appMigrationSet } from '../server/database/migration-sets.js'
import { prepareShared } from './helpers/shared.js'
import { tenantMigrations } from './helpers/tenant-schema.js'
import { mapLimit } from '../server/support/map-limit.js'

/** Records, in the tenant, which PostgreSQL backend ran its migration. */
class Migration20261207000001MigratedBy extends Migration {
  override async up (): Promise<void> {
    this.addSql('create table migrated_by as select pg_backend_pid() as pid')
  }
}

/** A migration that cannot run in a transaction. */
class Migration20261207000002Concurrently extends Migration {
  override isTransactional (): boolean {
    return false
  }

  override async up (): Promise<void> {
    this.addSql('create index concurrently projects_title_idx on projects (title)')
  }
}

/** Runs after the one above, in a transaction again. */
class Migration20261207000003After extends Migration {
  override async up (): Promise<void> {
    this.addSql('create table after_concurrently (id integer primary key)')
  }
}

/** Fails where a table `clash` is there already. */
class Migration20261207000004Clash extends Migration {
  override async up (): Promise<void> {
    this.addSql('create table clash (id integer primary key)')
  }
}

const migratedBy = { name: 'Migration20261207000001_migrated_by', class: Migration20261207000001MigratedBy }

test('a rollout over 30 schema tenants runs their migrations on as many connections as it runs tenants at once', { timeout: 240_000 }, async (t) => {
  const { app, central } = await buildApp(t, { strategy: 'schema' })
  const tenants = await mapLimit(Array.from({ length: 30 }, (_, i) => i), 4, async (i) => await app.tenancy.create({ identifier: `s${i}` }))
  const { app: next } = await buildApp(t, { strategy: 'schema', tenantMigrations: { migrationsList: [...tenantMigrations.migrationsList, migratedBy] } }, () => {}, central)
  const rollout = await next.tenancy.rollouts.start({ concurrency: 3 })
  const done = await next.tenancy.rollouts.run(rollout.id)
  assert.equal(done.counts.done, 30)
  const pids = new Set<number>()
  for (const tenant of tenants) {
    const target = next.tenancy.tenants.target(tenant)
    const rows = await sql<{ pid: number }>(target.url, `select pid from "${target.schema as string}".migrated_by`)
    assert.equal(rows.length, 1)
    pids.add(rows[0]?.pid as number)
  }
  // One connection per tenant made 30; a migrator per host reuses its 3.
  assert.ok(pids.size <= 3, `${pids.size} backends ran the migrations of 30 tenants at concurrency 3`)
})

test('a migration that is not transactional runs between transactional ones, and a failing set leaves none of its migrations behind', { timeout: 240_000 }, async (t) => {
  const { app, central } = await buildApp(t)
  const [ok, clashing] = await Promise.all([app.tenancy.create({ identifier: 'fine' }), app.tenancy.create({ identifier: 'clashing' })])
  await sql(app.tenancy.tenants.target(clashing).url, 'create table clash (id integer primary key)')
  const list = [
    ...tenantMigrations.migrationsList,
    { name: 'Migration20261207000002_concurrently', class: Migration20261207000002Concurrently },
    { name: 'Migration20261207000003_after', class: Migration20261207000003After },
    { name: 'Migration20261207000004_clash', class: Migration20261207000004Clash }
  ]
  const { app: next } = await buildApp(t, { tenantMigrations: { migrationsList: list } }, () => {}, central)
  const results = await next.tenancy.migrate()
  const byId = new Map(results.map((r) => [r.identifier, r]))
  assert.deepEqual(byId.get('fine')?.migrations, ['Migration20261207000002_concurrently', 'Migration20261207000003_after', 'Migration20261207000004_clash'])
  const fine = next.tenancy.tenants.target(ok).url
  assert.equal((await sql(fine, "select 1 from pg_indexes where indexname = 'projects_title_idx'")).length, 1)
  assert.equal((await sql(fine, "select 1 from pg_tables where tablename = 'after_concurrently'")).length, 1)

  // The index ran on its own, before the failing transaction; the migrations after it went back together.
  assert.equal(byId.get('clashing')?.ok, false)
  const bad = next.tenancy.tenants.target(clashing).url
  const recorded = (await sql<{ name: string }>(bad, 'select name from fastify_tenancy_migrations order by id')).map((r) => r.name)
  assert.deepEqual(recorded, [...tenantMigrations.migrationsList.map((m) => m.name), 'Migration20261207000002_concurrently'])
  assert.equal((await sql(bad, "select 1 from pg_tables where tablename = 'after_concurrently'")).length, 0)
  const status = await next.tenancy.migrationStatus(clashing)
  assert.deepEqual(status.pending, ['Migration20261207000003_after', 'Migration20261207000004_clash'])
})

test('a listed migration named with a .ts ending is recorded and compared as MikroORM names it, so it runs once', { timeout: 120_000 }, async (t) => {
  const { app, central } = await buildApp(t)
  const tenant = await app.tenancy.create({ identifier: 'named' })
  const list = [...tenantMigrations.migrationsList, { name: 'Migration20261207000001_migrated_by.ts', class: Migration20261207000001MigratedBy }]
  const { app: next } = await buildApp(t, { tenantMigrations: { migrationsList: list } }, () => {}, central)
  const [first] = await next.tenancy.migrate()
  assert.deepEqual(first?.migrations, ['Migration20261207000001_migrated_by'])
  const [again] = await next.tenancy.migrate()
  assert.equal(again?.ok, true)
  assert.deepEqual(again?.migrations, [])
  const rows = await sql<{ name: string }>(next.tenancy.tenants.target(tenant).url, "select name from fastify_tenancy_migrations where name like '%migrated_by%'")
  assert.deepEqual(rows.map((r) => r.name), ['Migration20261207000001_migrated_by'])
})

test('in strategies schema and shared, a migration that is not transactional runs in each tenant\'s schema, and the one after it too', { timeout: 240_000 }, async (t) => {
  const list = [
    ...tenantMigrations.migrationsList,
    { name: 'Migration20261207000002_concurrently', class: Migration20261207000002Concurrently },
    { name: 'Migration20261207000003_after', class: Migration20261207000003After }
  ]
  const { app, central } = await buildApp(t, { strategy: 'schema' })
  const tenants = await Promise.all(['one', 'two', 'three'].map(async (identifier) => await app.tenancy.create({ identifier })))
  const { app: next } = await buildApp(t, { strategy: 'schema', tenantMigrations: { migrationsList: list } }, () => {}, central)
  const results = await next.tenancy.migrate()
  assert.deepEqual(results.map((r) => [r.ok, r.migrations]), tenants.map(() => [true, ['Migration20261207000002_concurrently', 'Migration20261207000003_after']]))
  const schemas = tenants.map((tenant) => next.tenancy.tenants.target(tenant).schema as string).sort()
  const where = async (table: string, catalog: string, column: string): Promise<string[]> =>
    (await sql<{ s: string }>(central.url, `select schemaname as s from ${catalog} where ${column} = $1 order by 1`, [table])).map((r) => r.s)
  assert.deepEqual(await where('projects_title_idx', 'pg_indexes', 'indexname'), schemas)
  assert.deepEqual(await where('after_concurrently', 'pg_tables', 'tablename'), schemas)

  const shared = await freshCentral(t)
  await prepareShared(shared, 'tenant_shared', { migrations: { migrationsList: list } })
  assert.deepEqual(await sql(shared.url, "select schemaname from pg_indexes where indexname = 'projects_title_idx'"), [{ schemaname: 'tenant_shared' }])
  assert.deepEqual(await sql(shared.url, "select schemaname from pg_tables where tablename = 'after_concurrently'"), [{ schemaname: 'tenant_shared' }])
})

test('migrating up to a migration the app does not have is refused with FST_TENANCY_SCHEMA_TOO_NEW, and runs nothing', { timeout: 120_000 }, async (t) => {
  const central = await freshCentral(t)
  const name = `${central.prefix}up_to`
  await sql(serverUrl(), `create database "${name}"`)
  const migrator = new TenantMigrator([appMigrationSet(tenantMigrations)])
  t.after(async () => { await migrator.close() })
  const target = { url: urlFor(name), schema: null, name, server: serverUrl() }
  await assert.rejects(migrator.up(target, undefined, 'Migration20991231000000_from_a_newer_app'), { code: 'FST_TENANCY_SCHEMA_TOO_NEW' })
  assert.deepEqual(await sql(urlFor(name), "select tablename from pg_tables where schemaname = 'public'"), [])
  const first = tenantMigrations.migrationsList[0]?.name as string
  assert.deepEqual(await migrator.up(target, undefined, first), [first])
})
