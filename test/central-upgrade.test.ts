import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'
import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { tenancyPlugin } from '../server/index.js'
import { createCentralOrm, migrateCentral } from '../server/database/central.js'
import { centralMigrations } from '../migrations/central/index.js'
import { dropDatabases, serverUrl, sql, urlFor } from './helpers/database.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

// An installation made by the previous version: the central migrations it
// shipped (every one before the schema move; a shipped migration never
// changes), run as it ran them, every table of ours in `public`. The new version moves them into schema `tenancy`, rows and all.

const previousMigrations = centralMigrations.slice(0, centralMigrations.findIndex((m) => m.name === 'Migration20261125070001_tenancy_schema'))

const TABLES = [
  'tenants', 'domains', 'tenant_clusters', 'users', 'tenant_users', 'tenant_resources',
  'admin_roles', 'admins', 'admin_role_assignments', 'admin_sessions', 'admin_sign_in_failures', 'admin_audit_log', 'admin_fleet_runs',
  'tenant_former_names', 'tenant_maintenance', 'impersonation_tokens',
  'fastify_tenancy_settings', 'fastify_tenancy_sync_state', 'fastify_tenancy_sync_outbox', 'fastify_tenancy_sync_inbox'
]

const CLUSTER = '01900000-0000-7000-8000-0000000000c1'
const ACME = '01900000-0000-7000-8000-000000000001'
const GLOBEX = '01900000-0000-7000-8000-000000000002'
const ADMIN = '01900000-0000-7000-8000-0000000000a1'

/** Runs the previous version's central migrations on `url`, as that version did. */
async function previousVersion (url: string): Promise<string[]> {
  const orm = MikroORM.initSync({
    clientUrl: url,
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: 'test:previous-central',
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: { tableName: 'fastify_tenancy_migrations', migrationsList: previousMigrations, transactional: true, allOrNothing: true, disableForeignKeys: false, snapshot: false, silent: true }
  })
  try {
    return (await orm.migrator.up()).map((m) => m.name)
  } finally {
    await orm.close(true)
  }
}

/** Every row of each of our tables in `schema`, as JSON, in a stable order. */
async function rows (url: string, schema: string): Promise<Record<string, unknown[]>> {
  const all: Record<string, unknown[]> = {}
  for (const table of TABLES) {
    all[table] = (await sql<{ r: unknown }>(url, `select to_jsonb(t) as r from "${schema}"."${table}" t order by to_jsonb(t)::text`)).map((x) => x.r)
  }
  return all
}

test('a database made by the previous version moves to schema tenancy with every row kept, and works there', async (t) => {
  const name = `ft_upgrade_${randomBytes(4).toString('hex')}`
  const prefix = `${name}_t_`
  await sql(serverUrl(), `create database ${name}`)
  const server = Fastify()
  t.after(async () => {
    await server.close()
    await dropDatabases(serverUrl(), name, prefix)
  })
  const url = urlFor(name)
  assert.equal((await previousVersion(url)).length, previousMigrations.length)
  // An app's own table beside ours in public, which the upgrade must not touch.
  await sql(url, 'create table public.app_notes (id serial primary key, body text not null); insert into app_notes (body) values (\'mine\')')

  // Rows in every table the previous version made.
  await sql(url, `
    begin;
    insert into tenant_clusters (id, name, slug) values ('${CLUSTER}', 'East', 'east');
    insert into tenants (key, identifier, resource_key, name, status, tenant_cluster_id) values
      ('${ACME}', 'acme', gen_random_uuid(), 'Acme', 'active', '${CLUSTER}'),
      ('${GLOBEX}', 'globex', gen_random_uuid(), 'Globex', 'active', null);
    update tenant_clusters set parent_tenant_id = '${ACME}' where id = '${CLUSTER}';
    commit;
    insert into domains (domain, tenant_key, is_primary) values ('acme.test', '${ACME}', true), ('globex.test', '${GLOBEX}', true);
    update tenants set identifier = 'globex-corp' where key = '${GLOBEX}';
    insert into users (global_id, name, email, password) values ('u1', 'Ada', 'ada@example.test', 'hash');
    insert into tenant_users (tenant_key, global_user_id) values ('${ACME}', 'u1');
    insert into tenant_resources (tenant_key, resource_type, global_id) values ('${ACME}', 'companies', 'c1');
    insert into admins (id, email, name, password_hash) values ('${ADMIN}', 'ops@example.test', 'Ops', 'scrypt$x');
    insert into admin_role_assignments (admin_id, role_id) select '${ADMIN}', id from admin_roles where name = 'owner';
    insert into admin_sessions (id, admin_id, expires_at) values (repeat('a', 64), '${ADMIN}', now() + interval '1 day');
    insert into admin_sign_in_failures (key, failures) values (repeat('b', 64), 2);
    insert into admin_audit_log (actor_id, actor_email, action, tenant_key, tenant_identifier) values ('${ADMIN}', 'ops@example.test', 'tenant.create', '${ACME}', 'acme');
    insert into admin_fleet_runs (started_by, total, done, finished_at) values ('ops@example.test', 2, 2, now());
    insert into tenant_maintenance (tenant_key, message, bypass_hash) values ('${GLOBEX}', 'Back soon', repeat('c', 64));
    insert into impersonation_tokens (id, token_hash, tenant_key, user_id, expires_at) values (gen_random_uuid(), repeat('d', 64), '${ACME}', 'u1', now() + interval '1 minute');
    insert into fastify_tenancy_settings (name, value) values ('renames.keep_ms', '7776000000') on conflict (name) do nothing;
    insert into fastify_tenancy_sync_state (resource, global_id, version) values ('users', 'u1', nextval('fastify_tenancy_sync_version'));
    insert into fastify_tenancy_sync_outbox (change, destination) values ('{"resource":"users"}', '${ACME}');
    insert into fastify_tenancy_sync_inbox (id) values (gen_random_uuid());`)
  const before = await rows(url, 'public')
  for (const table of TABLES) assert.ok(before[table]!.length > 0, `${table} has rows before the upgrade`)
  assert.deepEqual((before.tenant_former_names as Array<{ name: string }>).map((r) => r.name), ['globex'], 'the previous version recorded the rename')

  // The new version: one migration moves everything.
  const orm = createCentralOrm({ url })
  try {
    assert.deepEqual(await migrateCentral(orm), centralMigrations.slice(previousMigrations.length).map((m) => m.name), 'every migration from the schema move on, in order')
  } finally {
    await orm.close(true)
  }
  // Later migrations of this version add tables and columns (tenant_moves, tenants.held_at, tenants.isolation): the rows that were there are compared.
  const after = await rows(url, 'tenancy')
  for (const table of Object.keys(after)) if (!(table in before)) delete after[table]
  for (const row of (after.tenants ?? []) as Array<Record<string, unknown>>) {
    assert.equal(row.isolation, null, 'no tenant is isolated by an upgrade')
    delete row.held_at
    delete row.isolation
  }
  // A later migration gives the owner role the new move_tenants permission; nothing else of a role changes.
  const owner = (after.admin_roles as Array<{ name: string, permissions: string[] }>).find((r) => r.name === 'owner')
  assert.ok(owner?.permissions.includes('move_tenants'), 'the owner role may move tenants')
  for (const role of after.admin_roles as Array<{ permissions: string[] }>) role.permissions = role.permissions.filter((p) => p !== 'move_tenants')
  assert.deepEqual(after, before, 'every row of every table, unchanged')
  const left = await sql<{ t: string }>(url, "select table_name as t from information_schema.tables where table_schema = 'public' order by 1")
  assert.deepEqual(left.map((r) => r.t), ['app_notes'], 'public holds only the app\'s own table')
  assert.deepEqual(await sql(url, 'select body from public.app_notes'), [{ body: 'mine' }])
  assert.deepEqual((await sql<{ name: string }>(url, 'select name from tenancy.fastify_tenancy_migrations order by id')).map((r) => r.name), centralMigrations.map((m) => m.name))
  // Sequences go on where they were.
  const v = (await sql<{ v: string }>(url, 'select nextval(\'tenancy.fastify_tenancy_sync_version\')::text as v'))[0]?.v
  assert.ok(Number(v) > Number((before.fastify_tenancy_sync_state as Array<{ version: number }>)[0]?.version), 'the sync version goes on')

  // The triggers work from a session whose search path names none of ours (an app's connection).
  const appSession = async (statements: string[]): Promise<unknown[]> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query('set search_path to public')
      let last: unknown[] = []
      for (const statement of statements) last = (await client.query(statement)).rows
      return last
    } finally {
      await client.end()
    }
  }
  assert.deepEqual(await appSession([
    `update tenancy.tenants set identifier = 'globex-inc' where key = '${GLOBEX}'`,
    'select name from tenancy.tenant_former_names order by name'
  ]), [{ name: 'globex' }, { name: 'globex-corp' }])
  await assert.rejects(appSession([`update tenancy.tenant_clusters set parent_tenant_id = null where id = '${CLUSTER}'`]), /has tenants but no parent tenant/)
  await assert.rejects(appSession([
    'delete from tenancy.domains where domain = \'globex.test\'',
    `insert into tenancy.domains (domain, tenant_key) values ('globex.test', '${ACME}')`
  ]), /still redirects/, 'the former-domain guard still holds')

  // The plugin registers on it and serves its tenants.
  await server.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url, prefix }, migrateCentral: true, identification: ['domain'], cache: { listen: false } })
  server.get('/who', async (request) => ({ tenant: request.tenant?.identifier }))
  await server.ready()
  assert.deepEqual((await server.inject({ url: '/who', headers: { host: 'acme.test' } })).json(), { tenant: 'acme' })
  assert.equal((await server.tenancy.tenants.byIdentifier('globex-inc'))?.name, 'Globex')
  assert.deepEqual((await server.tenancy.clusters.list()).map((c) => [c.name, c.parentTenantId]), [['East', ACME]])
})
