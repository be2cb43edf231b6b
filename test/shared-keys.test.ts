import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql, type CentralDatabase } from './helpers/database.js'
import { prepareShared, sharedTables } from './helpers/shared.js'
import { configFor, run } from './helpers/cli.js'
import { type Tenant } from '../server/index.js'
import { applyRls } from '../server/database/shared/rls-policies.js'
import { tenantTableSql } from '../server/database/shared/rls-sql.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

/**
 * Keys of the shared tables hold inside one tenant: a unique index or a
 * foreign key checks every row of the table, whatever the policy lets a
 * tenant see, so a global one tells a tenant what another holds, refuses it
 * a value only another has, or lets its rows point at another tenant's row
 * (and then blocks that tenant's delete).
 */

type App = Awaited<ReturnType<typeof buildApp>>['app']

async function sharedApp (t: TestContext, central: CentralDatabase, url: string, deleteBatch?: number): Promise<App> {
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'shared', shared: { url, ...(deleteBatch === undefined ? {} : { deleteBatch }) }, cache: { listen: false } }, () => {}, central)
  return app
}

async function inTenant (app: App, tenant: Tenant, text: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  let rows: Array<Record<string, unknown>> = []
  await app.tenancy.run(tenant, async (scope) => { rows = await scope.em.execute(text, params) })
  return rows
}

const centralRoleOf = (c: CentralDatabase): string => decodeURIComponent(new URL(c.url).username)

test('a unique index a later migration makes is reported by tenants:rls --check (exit 1) and refused at register, then made per tenant by tenants:rls: a tenant may use an email only another tenant has', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  await sharedTables(central, ['create table contacts (id serial primary key, email text not null)'])
  // A later app migration adds a unique index, as the central role, without tenants:rls after it.
  await sql(central.url, 'create unique index contacts_email on tenant_shared.contacts (lower(email))')
  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(shared.url)} }`)
  const before = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(before.code, 1, before.stdout + before.stderr)
  assert.match(before.stdout, /Keys in schema tenant_shared that hold across tenants.*contacts: unique index contacts_email \(CREATE UNIQUE INDEX contacts_email ON tenant_shared\.contacts USING btree \(lower\(email\)\)\)/)
  await assert.rejects(sharedApp(t, central, shared.url), { code: 'FST_TENANCY_RLS_GLOBAL_KEYS', message: /contacts_email/ })

  const fixed = await run(['--config', config, 'tenants:rls', '--json'])
  assert.equal(fixed.code, 0, fixed.stderr)
  assert.deepEqual(JSON.parse(fixed.stdout), { schema: 'tenant_shared', changed: ['contacts'], unvalidated: [] })
  assert.deepEqual(await sql(central.url, "select pg_get_indexdef('tenant_shared.contacts_email'::regclass) as def"), [{ def: 'CREATE UNIQUE INDEX contacts_email ON tenant_shared.contacts USING btree (tenant_key, lower(email))' }])
  const after = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(after.code, 0, after.stdout + after.stderr)

  const app = await sharedApp(t, central, shared.url)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  await inTenant(app, acme, "insert into contacts (email) values ('ann@example.com')")
  await inTenant(app, globex, "insert into contacts (email) values ('ANN@example.com')")
  await assert.rejects(inTenant(app, acme, "insert into contacts (email) values ('Ann@Example.com')"), /duplicate key/)
  assert.deepEqual(await inTenant(app, globex, 'select email from contacts'), [{ email: 'ANN@example.com' }])
})

test('tenants:rls --check reports every unique constraint, unique index, primary key and foreign key without tenant_key; tenants:rls makes them all per tenant, keeping their names and options', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  await sharedTables(central, ['create table labels (id serial, code text)'])
  // What app migrations made after tenants:rls last ran (as the central role, which owns the tables).
  await sql(central.url, `
    alter table tenant_shared.labels add constraint labels_pkey primary key (id);
    alter table tenant_shared.labels add constraint labels_code_key unique nulls not distinct (code);
    create unique index labels_upper on tenant_shared.labels (upper(code)) where code is not null;
    alter table tenant_shared.projects add column label_id int;
    alter table tenant_shared.projects add constraint projects_label_fkey foreign key (label_id) references tenant_shared.labels (id) on delete set null`)
  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(shared.url)} }`)
  const check = await run(['--config', config, 'tenants:rls', '--check', '--json'])
  assert.equal(check.code, 1, check.stderr)
  const report = JSON.parse(check.stdout) as { globalKeys: string[], missing: string[], unsafeRole: string[] }
  assert.deepEqual(report.missing, [])
  assert.deepEqual(report.unsafeRole, [])
  assert.deepEqual(report.globalKeys, [
    'labels: unique constraint labels_code_key (UNIQUE NULLS NOT DISTINCT (code))',
    'labels: primary key labels_pkey (PRIMARY KEY (id))',
    'labels: unique index labels_upper (CREATE UNIQUE INDEX labels_upper ON tenant_shared.labels USING btree (upper(code)) WHERE (code IS NOT NULL))',
    'projects: foreign key projects_label_fkey without tenant_key (FOREIGN KEY (label_id) REFERENCES tenant_shared.labels(id) ON DELETE SET NULL)'
  ])
  const fixed = await run(['--config', config, 'tenants:rls'])
  assert.equal(fixed.code, 0, fixed.stderr)
  assert.match(fixed.stdout, /Created row-level security or per-tenant keys on labels, projects/)
  const defs = await sql(central.url, `select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
    where conrelid in ('tenant_shared.labels'::regclass, 'tenant_shared.projects'::regclass) and contype in ('p', 'u', 'f') order by 1`)
  assert.deepEqual(defs, [
    { name: 'labels_code_key', def: 'UNIQUE NULLS NOT DISTINCT (tenant_key, code)' },
    { name: 'labels_pkey', def: 'PRIMARY KEY (tenant_key, id)' },
    { name: 'projects_label_fkey', def: 'FOREIGN KEY (tenant_key, label_id) REFERENCES tenant_shared.labels(tenant_key, id) ON DELETE SET NULL (label_id)' },
    { name: 'projects_pkey', def: 'PRIMARY KEY (tenant_key, id)' }
  ])
  assert.deepEqual(await sql(central.url, "select pg_get_indexdef('tenant_shared.labels_upper'::regclass) as def"), [{ def: 'CREATE UNIQUE INDEX labels_upper ON tenant_shared.labels USING btree (tenant_key, upper(code)) WHERE (code IS NOT NULL)' }])
  const again = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(again.code, 0, again.stdout + again.stderr)

  // ON DELETE SET NULL still clears only the row's own reference, never its tenant key.
  const app = await sharedApp(t, central, shared.url)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const [label] = await inTenant(app, acme, "insert into labels (code) values ('x') returning id")
  await inTenant(app, acme, "insert into projects (title, label_id) values ('p', ?)", [label?.id])
  await inTenant(app, acme, 'delete from labels')
  assert.deepEqual(await inTenant(app, acme, 'select title, label_id from projects'), [{ title: 'p', label_id: null }])
})

test('tables a migration makes with tenantTableSql have per-tenant keys at once: primary keys, uniques, unique indexes and foreign keys, among themselves and to older tables', async (t) => {
  const central = await freshCentral(t)
  await prepareShared(central)
  const role = centralRoleOf(central)
  const statements = [
    'create table tenant_shared.invoices (id serial primary key, number text not null unique, parent_id int references tenant_shared.invoices (id))',
    'create unique index invoices_number_lower on tenant_shared.invoices (lower(number))',
    'create table tenant_shared.invoice_lines (id serial primary key, invoice_id int not null references tenant_shared.invoices (id) on delete cascade, project_id int)',
    ...tenantTableSql('tenant_shared', 'invoices', role),
    ...tenantTableSql('tenant_shared', 'invoice_lines', role),
    // An older tenant table's key is per tenant already: a new foreign key to it names tenant_key on both sides.
    'alter table tenant_shared.invoice_lines add foreign key (tenant_key, project_id) references tenant_shared.projects (tenant_key, id)'
  ]
  // As a migration runs them: in order, in one transaction.
  await sql(central.url, `begin; ${statements.join(';\n')}; commit`)
  const defs = await sql(central.url, `select conrelid::regclass::text || '.' || conname as name, pg_get_constraintdef(oid) as def from pg_constraint
    where conrelid in ('tenant_shared.invoices'::regclass, 'tenant_shared.invoice_lines'::regclass) and contype in ('p', 'u', 'f') order by 1`)
  assert.deepEqual(defs, [
    { name: 'tenant_shared.invoice_lines.invoice_lines_invoice_id_fkey', def: 'FOREIGN KEY (tenant_key, invoice_id) REFERENCES tenant_shared.invoices(tenant_key, id) ON DELETE CASCADE' },
    { name: 'tenant_shared.invoice_lines.invoice_lines_pkey', def: 'PRIMARY KEY (tenant_key, id)' },
    { name: 'tenant_shared.invoice_lines.invoice_lines_tenant_key_project_id_fkey', def: 'FOREIGN KEY (tenant_key, project_id) REFERENCES tenant_shared.projects(tenant_key, id)' },
    { name: 'tenant_shared.invoices.invoices_number_key', def: 'UNIQUE (tenant_key, number)' },
    { name: 'tenant_shared.invoices.invoices_parent_id_fkey', def: 'FOREIGN KEY (tenant_key, parent_id) REFERENCES tenant_shared.invoices(tenant_key, id)' },
    { name: 'tenant_shared.invoices.invoices_pkey', def: 'PRIMARY KEY (tenant_key, id)' }
  ])
  assert.deepEqual(await sql(central.url, "select pg_get_indexdef('tenant_shared.invoices_number_lower'::regclass) as def"), [{ def: 'CREATE UNIQUE INDEX invoices_number_lower ON tenant_shared.invoices USING btree (tenant_key, lower(number))' }])
  // Nothing left for tenants:rls to change.
  assert.deepEqual((await applyRls({ url: central.url, schema: 'tenant_shared', centralRole: role })).changed, [])
})

test('a row planted before tenants:rls that points at another tenant\'s row no longer blocks that tenant\'s delete, and no new row can point across tenants', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const app = await sharedApp(t, central, shared.url)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  const [project] = await inTenant(app, acme, "insert into projects (title) values ('acme project') returning id")
  // An app migration run by hand while the app runs, as deployments before per-tenant keys had it:
  // projects.id unique across tenants, and a foreign key to it without tenant_key.
  await sql(central.url, `
    alter table tenant_shared.projects add constraint projects_id_key unique (id);
    create table tenant_shared.tasks (id serial primary key, tenant_key uuid not null default fastify_tenancy_rls.current_tenant(), project_id int references tenant_shared.projects (id), title text not null)`)
  // globex's task points at acme's project: a foreign key check does not look at the policy.
  await sql(central.url, "insert into tenant_shared.tasks (tenant_key, project_id, title) values ($1, $2, 'crosses')", [globex.key, project?.id])

  // tenants:rls
  const applied = await applyRls({ url: central.url, schema: 'tenant_shared', centralRole: centralRoleOf(central), appRole: decodeURIComponent(new URL(shared.url).username) })
  // No new row points across: globex has no project with that id.
  await assert.rejects(inTenant(app, globex, "insert into tasks (project_id, title) values (?, 'again')", [project?.id]), /foreign key/)
  await inTenant(app, acme, "insert into tasks (project_id, title) values (?, 'own')", [project?.id])

  // acme's delete finishes: globex's planted row points at no row of acme's any more.
  await app.tenancy.delete(acme)
  assert.equal(await app.tenancy.tenants.find('acme'), null)
  assert.deepEqual(await sql(central.url, 'select count(*)::int as n from tenant_shared.projects where tenant_key = $1', [acme.key]), [{ n: 0 }])
  assert.deepEqual(await sql(central.url, 'select tenant_key, title from tenant_shared.tasks order by title'), [{ tenant_key: globex.key, title: 'crosses' }])

  // The planted row kept the new key from being validated: reported, for the operator to fix.
  assert.deepEqual(applied.unvalidated, [{ table: 'tasks', name: 'tasks_project_id_fkey' }])
  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(shared.url)} }`)
  const check = await run(['--config', config, 'tenants:rls', '--check'])
  assert.equal(check.code, 1)
  assert.match(check.stdout, /NOT VALID because rows made before point at another tenant's rows.*tasks: tasks_project_id_fkey/)
  await sql(central.url, "delete from tenant_shared.tasks where title = 'crosses'")
  assert.deepEqual((await applyRls({ url: central.url, schema: 'tenant_shared', centralRole: centralRoleOf(central) })).unvalidated, [])
  assert.equal((await run(['--config', config, 'tenants:rls', '--check'])).code, 0)
})

test('a tenant\'s delete goes in foreign key order: rows that reference each other without cascade (a chain, a table referencing itself) go in small batches', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  await sharedTables(central, [
    'create table folders (id serial primary key, parent_id int references folders (id), name text not null)',
    'create table docs (id serial primary key, folder_id int not null references folders (id), name text not null)',
    'create table comments (id serial primary key, doc_id int not null references docs (id), body text not null)'
  ])
  const app = await sharedApp(t, central, shared.url, 2)
  const tenants = [await app.tenancy.create({ identifier: 'acme' }), await app.tenancy.create({ identifier: 'globex' })]
  for (const tenant of tenants) {
    let parent: unknown = null
    for (let depth = 0; depth < 7; depth++) {
      const [folder] = await inTenant(app, tenant, 'insert into folders (parent_id, name) values (?, ?) returning id', [parent, `f${depth}`])
      const [doc] = await inTenant(app, tenant, "insert into docs (folder_id, name) values (?, 'd') returning id", [folder?.id])
      await inTenant(app, tenant, "insert into comments (doc_id, body) values (?, 'c'), (?, 'c')", [doc?.id, doc?.id])
      parent = folder?.id
    }
    await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: 'p' }); await scope.em.flush() })
  }
  const [acme, globex] = tenants as [Tenant, Tenant]
  await app.tenancy.delete(acme)
  assert.equal(await app.tenancy.tenants.find('acme'), null)
  const count = async (key: string): Promise<unknown> => await sql(central.url, `select (select count(*) from tenant_shared.folders where tenant_key = $1)::int as folders,
    (select count(*) from tenant_shared.docs where tenant_key = $1)::int as docs, (select count(*) from tenant_shared.comments where tenant_key = $1)::int as comments`, [key])
  assert.deepEqual(await count(acme.key), [{ folders: 0, docs: 0, comments: 0 }])
  assert.deepEqual(await count(globex.key), [{ folders: 7, docs: 7, comments: 14 }])
})
