import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { randomBytes } from 'node:crypto'
import { freshCentral, serverUrl, sql } from './helpers/database.js'
import { asRole, prepareShared } from './helpers/shared.js'
import { configFor, run, type Run } from './helpers/cli.js'
import { CentralUserEntity, type Tenant } from '../server/index.js'
import { ProjectEntity, TenantUserCopyEntity } from './helpers/tenant-schema.js'
import { signProof } from '../server/database/shared/tenant-proof.js'
import { createAppRole, readSecret, unprotectedTables } from '../server/database/shared/rls-policies.js'
import { tenancyRuntime } from '../server/tenancy.js'

/**
 * Databases named after these tenants' keys (a database per tenant would be). By
 * name, not a count of every database: other test files make and drop theirs
 * on the same server meanwhile.
 */
async function databasesOf (url: string, tenants: Tenant[]): Promise<string[]> {
  const rows = await sql(url, 'select datname from pg_database where datname ~ $1', [tenants.map((t) => t.key.replaceAll('-', '')).join('|')])
  return rows.map((r) => r.datname as string)
}

async function sharedApp (t: Parameters<typeof buildApp>[0]): Promise<{ app: Awaited<ReturnType<typeof buildApp>>['app'], central: Awaited<ReturnType<typeof freshCentral>>, appUrl: string }> {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  const { app } = await buildApp(t, { identification: ['header'], strategy: 'shared', shared: { url: shared.url } }, (a) => {
    a.get('/projects', async (request) => (await request.tenantEm.find(ProjectEntity, {}, { orderBy: { title: 'asc' } })).map((p) => p.title))
    // A handler that forgets the filter: raw SQL through the tenant EntityManager, no WHERE.
    a.get('/raw', async (request) => (await request.tenantEm.execute('select title from projects order by title')).map((r) => r.title as string))
    a.post('/projects', async (request) => {
      const em = request.tenantEm
      em.create(ProjectEntity, { title: (request.body as { title: string }).title })
      await em.flush()
      return { ok: true }
    })
  }, central)
  return { app, central, appUrl: shared.url }
}

async function seed (app: { tenancy: { run: (t: Tenant, fn: (s: any) => Promise<void>) => Promise<void> } }, tenant: Tenant, titles: string[]): Promise<void> {
  await app.tenancy.run(tenant, async (scope) => {
    for (const title of titles) scope.em.create(ProjectEntity, { title })
    await scope.em.flush()
  })
}

test('shared tables: each tenant sees only its rows, through the ORM and through raw SQL that forgets the filter', async (t) => {
  const { app, central } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  await seed(app, acme, ['a1', 'a2'])
  await seed(app, globex, ['g1'])
  assert.deepEqual((await app.inject({ url: '/projects', headers: { 'x-tenant': 'acme' } })).json(), ['a1', 'a2'])
  assert.deepEqual((await app.inject({ url: '/raw', headers: { 'x-tenant': 'acme' } })).json(), ['a1', 'a2'])
  assert.deepEqual((await app.inject({ url: '/raw', headers: { 'x-tenant': 'globex' } })).json(), ['g1'])
  assert.equal((await app.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'globex' }, payload: { title: 'g2' } })).statusCode, 200)
  assert.deepEqual((await app.inject({ url: '/projects', headers: { 'x-tenant': 'globex' } })).json(), ['g1', 'g2'])
  // The rows really are in one table, told apart by their key.
  const rows = await sql(central.url, 'select tenant_key, count(*)::int as n from tenant_shared.projects group by 1')
  assert.deepEqual(
    rows.sort((x, y) => x.tenant_key < y.tenant_key ? -1 : 1),
    [{ tenant_key: acme.key, n: 2 }, { tenant_key: globex.key, n: 2 }].sort((x, y) => x.tenant_key < y.tenant_key ? -1 : 1)
  )
})

test('shared tables: an email is unique per tenant, not across tenants', async (t) => {
  const { app } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  const user = (id: string): { globalId: string, name: string, email: string, password: string } => ({ globalId: id, name: 'Ann', email: 'ann@example.com', password: 'x' })
  await app.tenancy.run(acme, async (s) => { s.em.create(TenantUserCopyEntity, user('g-1')); await s.em.flush() })
  await app.tenancy.run(globex, async (s) => { s.em.create(TenantUserCopyEntity, user('g-1')); await s.em.flush() })
  await assert.rejects(app.tenancy.run(acme, async (s) => { s.em.create(TenantUserCopyEntity, user('g-2')); await s.em.flush() }), /unique|duplicate/i)
})

test('shared tables: outside a tenant context the tenant EntityManager refuses to read or create', async (t) => {
  const { app } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  let leaked: any
  await app.tenancy.run(acme, async (s) => { leaked = s.em.fork() })
  await tenancyRuntime(app.tenancy).context.exit(async () => {
    await assert.rejects(leaked.find(ProjectEntity, {}), { code: 'FST_TENANCY_NO_TENANT_CONTEXT' })
    assert.throws(() => leaked.create(ProjectEntity, { title: 'nowhere' }), { code: 'FST_TENANCY_NO_TENANT_CONTEXT' })
    await assert.rejects(leaked.flush(), { code: 'FST_TENANCY_NO_TENANT_CONTEXT' })
    await assert.rejects(leaked.execute('select 1'), { code: 'FST_TENANCY_NO_TENANT_CONTEXT' })
  })
})

test('the app role with no tenant set sees 0 rows and cannot insert; it cannot name another tenant, turn the policies off or read across tenants by hand; the central role can', async (t) => {
  const { app, central, appUrl } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  await seed(app, acme, ['a1'])
  await seed(app, globex, ['g1'])
  // No tenant set: nothing, not everything.
  assert.deepEqual(await sql(appUrl, 'select * from tenant_shared.projects'), [])
  assert.deepEqual(await sql(appUrl, `select * from tenant_shared.projects where tenant_key = '${globex.key}'`), [])
  await assert.rejects(sql(appUrl, "insert into tenant_shared.projects (title) values ('x')"), /null value|row-level security/)
  await assert.rejects(sql(appUrl, `insert into tenant_shared.projects (title, tenant_key) values ('x', '${globex.key}')`), /row-level security/)
  // Naming a tenant by hand without the signature gets nothing.
  assert.deepEqual(await sql(appUrl, `select set_config('fastify_tenancy.tenant', '${globex.key}', false), (select count(*)::int from tenant_shared.projects) as n`).then((r) => r.map((x) => x.n)), [0])
  assert.deepEqual(await sql(appUrl, `select set_config('fastify_tenancy.tenant', '${globex.key}.${'0'.repeat(64)}', false), (select count(*)::int from tenant_shared.projects) as n`).then((r) => r.map((x) => x.n)), [0])
  // A value of the signed shape that is no key at all is nothing too, never an error (no cast before the signature holds).
  for (const forged of [`${'z'.repeat(36)}.${'0'.repeat(64)}`, `${globex.key}x${'0'.repeat(64)}`, `${globex.key}.${'0'.repeat(63)}`]) {
    assert.deepEqual(await sql(appUrl, `select set_config('fastify_tenancy.tenant', '${forged}', false), (select count(*)::int from tenant_shared.projects) as n`).then((r) => r.map((x) => x.n)), [0])
  }
  // Inside a tenant, hand-written SQL that asks for another tenant's rows still gets none.
  const secret = await readSecret(central.url)
  const proof = signProof(secret, acme.key, Date.now() / 1000 + 600)
  const client = new (await import('pg')).default.Client({ connectionString: appUrl })
  await client.connect()
  // Each statement in a transaction of its own that proves acme first, as the app's statements are.
  const inAcme = async (text: string): Promise<Array<Record<string, unknown>>> => {
    await client.query('begin')
    try {
      await client.query('select fastify_tenancy_rls.enter($1)', [proof])
      return (await client.query(text)).rows
    } finally {
      await client.query('rollback')
    }
  }
  try {
    assert.deepEqual(await inAcme(`select title from tenant_shared.projects where tenant_key = '${globex.key}' or true`), [{ title: 'a1' }])
    await assert.rejects(inAcme(`update tenant_shared.projects set tenant_key = '${globex.key}'`), /row-level security/)
    await assert.rejects(inAcme('alter table tenant_shared.projects disable row level security'), /must be owner/)
    await assert.rejects(inAcme('alter table tenant_shared.projects no force row level security'), /must be owner/)
    await assert.rejects(inAcme('drop policy fastify_tenancy_tenant on tenant_shared.projects'), /must be owner/)
    await assert.rejects(inAcme('set row_security = off; select * from tenant_shared.projects'), /row-level security/)
    await assert.rejects(inAcme('select value from fastify_tenancy_rls.secret'), /permission denied/)
  } finally {
    await client.end()
  }
  // The central role crosses tenants.
  assert.deepEqual((await sql(central.url, 'select title from tenant_shared.projects order by title')).map((r) => r.title), ['a1', 'g1'])
})

test('the plugin refuses to register when a tenant table has no policy, or the app role could see past them', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  await sql(central.url, 'create table tenant_shared.invoices (id serial primary key, total int not null)')
  await assert.rejects(buildApp(t, { strategy: 'shared', shared: { url: shared.url } }, () => {}, central), { code: 'FST_TENANCY_RLS_MISSING', message: /invoices/ })
  // tenants:rls (here: the migration helper) makes the table a tenant table; then a superuser as app role is refused.
  await prepareShared(central)
  assert.deepEqual(await sql(central.url, "select policyname from pg_policies where tablename = 'invoices' order by 1"), [{ policyname: 'fastify_tenancy_central' }, { policyname: 'fastify_tenancy_tenant' }])
  const superApp = new URL(central.url)
  await sql(central.url, "do $$ begin if not exists (select 1 from pg_roles where rolname = 'ft_super_app') then create role ft_super_app login superuser password 'x'; end if; end $$")
  superApp.username = 'ft_super_app'
  superApp.password = 'x'
  await assert.rejects(buildApp(t, { strategy: 'shared', shared: { url: superApp.toString() } }, () => {}, central), { code: 'FST_TENANCY_RLS_UNSAFE_ROLE' })
})

test('deleting a tenant removes its rows in batches and leaves the others; creating one makes no database', async (t) => {
  const { app, central } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const globex = await app.tenancy.create({ identifier: 'globex' })
  assert.deepEqual(await databasesOf(central.url, [acme, globex]), [])
  await seed(app, acme, Array.from({ length: 2500 }, (_, i) => `a${i}`))
  await seed(app, globex, ['g1'])
  await app.tenancy.delete(acme)
  const rows = await sql(central.url, 'select tenant_key, count(*)::int as n from tenant_shared.projects group by 1')
  assert.deepEqual(rows, [{ tenant_key: globex.key, n: 1 }])
  assert.equal(await app.tenancy.tenants.find('acme'), null)
  assert.deepEqual((await app.inject({ url: '/projects', headers: { 'x-tenant': 'globex' } })).json(), ['g1'])
})

test('tenants:migrate is one migration for every tenant', async (t) => {
  const { app } = await sharedApp(t)
  await app.tenancy.create({ identifier: 'acme' })
  await app.tenancy.create({ identifier: 'globex' })
  const results = await app.tenancy.migrate()
  assert.deepEqual(results.map((r) => [r.identifier, r.ok, r.migrations]), [['acme', true, []], ['globex', true, []]])
  const acme = await app.tenancy.tenants.find('acme') as Tenant
  assert.deepEqual((await app.tenancy.migrationStatus(acme)).pending, [])
})

test('on a database no migration has reached: the plugin and tenants:rls say to run tenants:migrate, which makes the shared tables and says so with no tenant yet; then the plugin registers', async (t) => {
  const central = await freshCentral(t)
  const role = `ft_fresh_${randomBytes(4).toString('hex')}`
  await createAppRole(central.url, role, 'pw')
  // After the central database is dropped (hooks run in order), so no privilege keeps the role.
  t.after(async () => { await sql(serverUrl(), `drop role if exists "${role}"`).catch(() => {}) })
  const url = asRole(central.url, role, 'pw')
  const refused = await buildApp(t, { strategy: 'shared', shared: { url } }, () => {}, central).then(() => null, (error: Error & { code?: string }) => error)
  assert.equal(refused?.code, 'FST_TENANCY_MISCONFIGURED')
  assert.match(refused?.message ?? '', /not installed in the shared database yet: run `fastify-tenancy tenants:migrate` once before the first start/)

  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(url)} }`)
  const cli = async (...args: string[]): Promise<Run> => await run(['--config', config, ...args])
  const rls = await cli('tenants:rls')
  assert.equal(rls.code, 2, rls.stderr)
  assert.match(rls.stderr, /^FST_TENANCY_MISCONFIGURED: The shared schema "tenant_shared" does not exist yet: run `fastify-tenancy tenants:migrate` first/)
  const migrated = await cli('tenants:migrate')
  assert.equal(migrated.code, 0, migrated.stderr)
  assert.match(migrated.stdout, /^The shared tables in schema tenant_shared: ran .+; row-level security is in place\.\nNo tenants to work on\.\n$/)
  const again = await cli('tenants:migrate')
  assert.match(again.stdout, /^The shared tables in schema tenant_shared: no migration to run; row-level security is in place\./)
  const { app } = await buildApp(t, { strategy: 'shared', shared: { url } }, () => {}, central)
  assert.equal(tenancyRuntime(app.tenancy).options.strategy, 'shared')
})

test('fastify-tenancy tenants:rls --check reports a table without a policy (exit 1); tenants:rls creates it; then the plugin registers', async (t) => {
  const central = await freshCentral(t)
  const shared = await prepareShared(central)
  await sql(central.url, 'create table tenant_shared.invoices (id serial primary key, number text not null unique)')
  const config = await configFor(central, `, strategy: 'shared', shared: { url: ${JSON.stringify(shared.url)} }`)
  const cli = async (...args: string[]): Promise<Run> => await run(['--config', config, ...args])
  const before = await cli('tenants:rls', '--check')
  assert.equal(before.code, 1, before.stderr)
  assert.match(before.stdout, /without a row-level security policy: invoices\./)
  const made = await cli('tenants:rls', '--json')
  assert.equal(made.code, 0, made.stderr)
  assert.deepEqual(JSON.parse(made.stdout), { schema: 'tenant_shared', changed: ['invoices'], unvalidated: [] })
  const after = await cli('tenants:rls', '--check')
  assert.equal(after.code, 0, after.stderr)
  // The number is now unique per tenant: two tenants may both have invoice 1.
  const [row] = await sql(central.url, "select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'tenant_shared.invoices'::regclass and contype = 'u'")
  assert.equal(row?.def, 'UNIQUE (tenant_key, number)')
  const { app } = await buildApp(t, { strategy: 'shared', shared: { url: shared.url } }, () => {}, central)
  assert.equal(tenancyRuntime(app.tenancy).options.strategy, 'shared')
})

test('the admin panel in strategy shared: an operator creates a tenant (no database), sees it active with the shared migrations, and deletes it with its rows', async (t) => {
  const { AdminClient, buildAdminApp, makeAdmin } = await import('./helpers/admin.js')
  const { app, central } = await buildAdminApp(t, { strategy: 'shared' })
  const admin = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(admin.email, admin.password)
  const created = await client.post('/admin/tenants/new', { identifier: 'acme', name: 'Acme Corp', domains: 'acme.test', cluster: '' }, { from: '/admin/tenants/new' })
  assert.equal(created.statusCode, 303)
  const url = String(created.headers.location)
  const page = await client.get(url)
  assert.equal(page.statusCode, 200)
  assert.match(page.body, /id="tenant-status">active</)
  assert.match(page.body, /Migration20261122000001_tenant <small>ran/)
  const acme = await app.tenancy.tenants.find('acme') as Tenant
  assert.deepEqual(await databasesOf(central.url, [acme]), [])
  await seed(app, acme, ['a1'])
  const deleted = await client.post(`${url}/delete`, { confirm: 'acme' }, { from: `${url}/delete` })
  assert.equal(deleted.statusCode, 303)
  assert.deepEqual(await sql(central.url, 'select key from tenancy.tenants'), [])
  assert.deepEqual(await sql(central.url, 'select title from tenant_shared.projects'), [])
})

test('strategy shared takes resource syncing: its outbox and sync versions are tenant tables, a version kept per tenant', async (t) => {
  const central = await freshCentral(t)
  await prepareShared(central)
  const sync = { mode: 'inline', resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
  const { app } = await buildApp(t, { strategy: 'shared', sync } as any, () => {}, central)
  assert.deepEqual(await unprotectedTables(central.url, 'tenant_shared'), [], 'tenants:rls --check finds every table protected, the sync ones too')
  const key = await sql(central.url, `select array(select a.attname::text from pg_constraint k join pg_attribute a on a.attrelid = k.conrelid and a.attnum = any (k.conkey)
    where k.conrelid = 'tenant_shared.fastify_tenancy_sync_state'::regclass and k.contype = 'p' order by a.attnum) as columns`)
  assert.deepEqual(key, [{ columns: ['resource', 'global_id', 'tenant_key'] }])
  // Two tenants hold a copy of the same user: each has its own version row, and nothing leaks into the other.
  const [a, b] = [await app.tenancy.create({ identifier: 'a' }), await app.tenancy.create({ identifier: 'b' })]
  const em = app.tenancy.orm.em.fork()
  const user = em.create(CentralUserEntity, { name: 'Jane', email: 'jane@x.test', password: 'p' } as never)
  await em.flush()
  for (const tenant of [a, b]) await app.tenancy.sync!.attach('users', String(user.globalId), tenant)
  await app.tenancy.sync!.settle()
  assert.deepEqual(await sql(central.url, 'select tenant_key::text as tenant from tenant_shared.fastify_tenancy_sync_state order by 1'), [a.key, b.key].sort().map((tenant) => ({ tenant })))
  assert.deepEqual(await sql(central.url, 'select tenant_key::text as tenant, name from tenant_shared.users order by 1'), [a.key, b.key].sort().map((tenant) => ({ tenant, name: 'Jane' })))
})

test('the policy compares the column to the tenant without casting it, so a tenant\'s rows are read through an index on the tenant key', async (t) => {
  const { app, central, appUrl } = await sharedApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  // Many tenants' rows, so that reading one tenant's few through the index is the plan.
  await sql(central.url, "insert into tenant_shared.projects (tenant_key, title) select gen_random_uuid(), 'p' || i from generate_series(1, 20000) i")
  await seed(app, acme, ['a1', 'a2'])
  await sql(central.url, 'analyze tenant_shared.projects')
  const secret = await readSecret(central.url)
  const client = new (await import('pg')).default.Client({ connectionString: appUrl })
  await client.connect()
  try {
    await client.query('begin')
    await client.query('select fastify_tenancy_rls.enter($1)', [signProof(secret, acme.key, Date.now() / 1000 + 600)])
    const plan = (await client.query('explain select title from tenant_shared.projects')).rows.map((r) => r['QUERY PLAN'] as string).join('\n')
    // The tenant key index, or the primary key, which is per tenant and so leads with tenant_key.
    assert.match(plan, /projects_tenant_key_idx|projects_pkey/)
    assert.match(plan, /Index Cond: \(tenant_key = \(InitPlan 1\)|Index Cond: \(tenant_key = \$0\)/)
    assert.deepEqual((await client.query('select title from tenant_shared.projects order by title')).rows, [{ title: 'a1' }, { title: 'a2' }])
    await client.query('commit')
  } finally {
    await client.end()
  }
})
