import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'

// Syncing on: its bookkeeping tables (the tenant outbox) are in every tenant's database, and in the bundle.
const SYNC = { resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
import { sql } from './helpers/database.js'
import { configFor, run } from './helpers/cli.js'
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

const STRATEGIES = ['database', 'schema', 'shared'] as const
type Strategy = typeof STRATEGIES[number]

/** Each table's rows as one checksum, with or without the surrogate ids (strategy shared gives imported rows new ids: its ids are unique across tenants). */
const CHECKSUMS = {
  users: (id: boolean) => `select count(*)::int as n, md5(coalesce(string_agg(r, '|' order by r), '')) as sum from (select concat_ws(',', ${id ? 'id, ' : ''}global_id, name, email, password, role, created_at, updated_at) as r from users) x`,
  projects: (id: boolean) => `select count(*)::int as n, md5(coalesce(string_agg(r, '|' order by r), '')) as sum from (select concat_ws(',', ${id ? 'id, ' : ''}title, created_at) as r from projects) x`,
  fastify_tenancy_sync_outbox: (id: boolean) => `select count(*)::int as n, md5(coalesce(string_agg(r, '|' order by r), '')) as sum from (select concat_ws(',', ${id ? 'id, ' : ''}change::text, created_at) as r from fastify_tenancy_sync_outbox) x`
}

async function checksums (app: FastifyInstance, tenant: Tenant, ids: boolean): Promise<Record<string, unknown>> {
  return await app.tenancy.run(tenant, async (scope) => {
    const out: Record<string, unknown> = {}
    for (const [table, query] of Object.entries(CHECKSUMS)) {
      // Syncing's outbox is there only when syncing is on.
      const [present] = await scope.em.getConnection().execute('select to_regclass(?) is not null as p', [table])
      if (present?.p === true) out[table] = (await scope.em.getConnection().execute(query(ids)))[0]
    }
    return out
  })
}

async function seed (app: FastifyInstance, tenant: Tenant, n: number): Promise<void> {
  await app.tenancy.run(tenant, async (scope) => {
    const conn = scope.em.getConnection()
    await conn.execute(`insert into users (global_id, name, email, password) select 'g' || g, 'user ''' || g, 'u' || g || '@example.com', E'x\\\\y\\tz' from generate_series(1, ${n}) g`)
    await conn.execute(`insert into projects (title) select E'project ' || g || E'\\nline two' from generate_series(1, ${n * 3}) g`)
    const [outbox] = await conn.execute('select to_regclass(?) is not null as p', ['fastify_tenancy_sync_outbox'])
    if (outbox?.p === true) await conn.execute(`insert into fastify_tenancy_sync_outbox (change) select jsonb_build_object('n', g, 'text', E'a\\\\b') from generate_series(1, ${n}) g`)
  })
}

async function exported (app: FastifyInstance, name: string): Promise<Buffer> {
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  await app.tenancy.bundles.export(name, out)
  out.end()
  return Buffer.concat(chunks)
}

async function appOf (t: Parameters<typeof buildApp>[0], strategy: Strategy): Promise<FastifyInstance> {
  return (await buildApp(t, { strategy, identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 }, sync: SYNC })).app
}

test('export then import under a new identifier gives equal row checksums per table, in each strategy and across strategies', async (t) => {
  const apps = new Map<Strategy, FastifyInstance>()
  for (const strategy of STRATEGIES) apps.set(strategy, await appOf(t, strategy))
  const bundles = new Map<Strategy, Buffer>()
  const originals = new Map<Strategy, Tenant>()
  for (const strategy of STRATEGIES) {
    const app = apps.get(strategy) as FastifyInstance
    const tenant = await app.tenancy.create({ identifier: 'acme', domains: ['acme.example.com'], name: 'Acme Inc', data: { plan: 'pro' } })
    await seed(app, tenant, 100)
    originals.set(strategy, tenant)
    bundles.set(strategy, await exported(app, 'acme'))
  }
  for (const from of STRATEGIES) {
    for (const to of STRATEGIES) {
      const app = apps.get(to) as FastifyInstance
      const source = originals.get(from) as Tenant
      const copy = await app.tenancy.bundles.import(Readable.from(bundles.get(from) as Buffer), { as: `from-${from}` })
      assert.equal(copy.status, 'active')
      assert.equal(copy.name, 'Acme Inc')
      assert.deepEqual(copy.data, { plan: 'pro' })
      assert.notEqual(copy.key, source.key, 'a new identifier gets a new key')
      assert.deepEqual(await app.tenancy.domains.list(copy), [], 'the domains stay with the original')
      const ids = to !== 'shared'
      assert.deepEqual(await checksums(app, copy, ids), await checksums(apps.get(from) as FastifyInstance, source, ids), `${from} -> ${to}`)
      // New rows get ids that collide with none imported.
      await app.tenancy.run(copy, async (scope) => { await scope.em.getConnection().execute('insert into projects (title) values (\'after the import\')') })
    }
  }
  // The originals are untouched by the imports beside them.
  for (const strategy of STRATEGIES) {
    const sums = await checksums(apps.get(strategy) as FastifyInstance, originals.get(strategy) as Tenant, true)
    assert.equal((sums.projects as { n: number }).n, 300, strategy)
  }
})

test('an export is one snapshot while the tenant keeps writing; an import under its own identifier keeps its key and domains', async (t) => {
  const source = await appOf(t, 'database')
  const target = await appOf(t, 'schema')
  const tenant = await source.tenancy.create({ identifier: 'acme', domains: ['acme.example.com'] })
  await seed(source, tenant, 2000)
  let writing = true
  let writes = 0
  const writer = (async () => {
    while (writing) {
      // A project and an outbox row, always together.
      await source.tenancy.run(tenant, async (scope) => {
        await scope.em.transactional(async (em) => {
          await em.execute('insert into projects (title) values (\'pair\')')
          await em.execute('insert into fastify_tenancy_sync_outbox (change) values (\'{"pair":true}\')')
        })
      })
      writes++
    }
  })()
  const bundle = await exported(source, 'acme')
  writing = false
  await writer
  assert.ok(writes > 0)
  const imported = await target.tenancy.bundles.import(Readable.from(bundle))
  assert.equal(imported.key, tenant.key)
  assert.deepEqual((await target.tenancy.domains.list(imported)).map((d) => d.domain), ['acme.example.com'])
  const [pairs = {}] = await target.tenancy.run(imported, async (scope) => await scope.em.getConnection().execute('select (select count(*) from projects where title = \'pair\')::int as projects, (select count(*) from fastify_tenancy_sync_outbox where change ? \'pair\')::int as outbox'))
  assert.equal(pairs.projects, pairs.outbox, 'both halves of every pair, or neither')
})

test('a bundle from a newer schema is refused with FST_TENANCY_SCHEMA_TOO_NEW, and a cut or foreign file with FST_TENANCY_INVALID_BUNDLE; nothing is left behind', async (t) => {
  const app = await appOf(t, 'database')
  const tenant = await app.tenancy.create({ identifier: 'acme' })
  await seed(app, tenant, 10)
  const bundle = (await exported(app, 'acme')).toString('utf8')
  const newer = bundle.replace('"migrations":["', '"migrations":["Migration29990101000000_future","')
  // This app's databases only (other test files make databases on the same server meanwhile).
  const name = app.tenancy.tenants.databaseName(tenant)
  const mine = `${name.slice(0, name.length - tenant.key.replaceAll('-', '').length)}%`
  const databases = async (): Promise<unknown> => await sql(app.tenancy.tenants.target(tenant).server, 'select count(*)::int as n from pg_database where datname like $1', [mine])
  const before = await databases()
  await assert.rejects(app.tenancy.bundles.import(Readable.from(newer), { as: 'newer' }), { code: 'FST_TENANCY_SCHEMA_TOO_NEW', message: /migration Migration29990101000000_future, which this app does not have/ })
  await assert.rejects(app.tenancy.bundles.import(Readable.from(bundle.slice(0, bundle.lastIndexOf('@end'))), { as: 'cut' }), { code: 'FST_TENANCY_INVALID_BUNDLE', message: /ends before its "@end" line/ })
  await assert.rejects(app.tenancy.bundles.import(Readable.from('hello\n'), { as: 'foreign' }), { code: 'FST_TENANCY_INVALID_BUNDLE' })
  await assert.rejects(app.tenancy.bundles.import(Readable.from(bundle)), { code: 'FST_TENANCY_IDENTIFIER_TAKEN' })
  assert.deepEqual((await app.tenancy.tenants.select()).map((x) => x.identifier), ['acme'])
  assert.deepEqual(await databases(), before, 'no database left by a refused import')
})

test('tenants:export writes a bundle to stdout and tenants:import restores it under a new identifier', async (t) => {
  // The command's config has the same tenant schema as the app (no syncing: its config file names no entities).
  const { app, central } = await buildApp(t, { identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 } })
  const tenant = await app.tenancy.create({ identifier: 'acme' })
  await seed(app, tenant, 50)
  const config = await configFor(central)
  const out = await run(['tenants:export', 'acme', '-c', config])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stderr, /^Exported tenant acme \(.+\) at migration Migration\d+_\w+\.\n$/)
  const file = join(dirname(config), 'acme.tenancy')
  await writeFile(file, out.stdout)
  const imported = await run(['tenants:import', file, '--as', 'acme-restored', '--json', '-c', config])
  assert.equal(imported.code, 0, imported.stderr)
  const copy = await app.tenancy.tenants.find('acme-restored') as Tenant
  assert.equal(JSON.parse(imported.stdout).key, copy.key)
  assert.deepEqual(await checksums(app, copy, true), await checksums(app, tenant, true))
  const missing = await run(['tenants:import', join(dirname(config), 'nothing.tenancy'), '-c', config])
  assert.equal(missing.code, 2)
})

test('a bundle carries the tenant\'s synced resources: imported under a new identifier, the copy gets mappings of its own, equal copies, and later central updates; a resource gone centrally is reported', async (t) => {
  const { app, central } = await buildApp(t, { strategy: 'database', identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 }, sync: SYNC })
  const tenant = await app.tenancy.create({ identifier: 'acme' })
  const em = app.tenancy.orm.em.fork()
  const users = ['ann', 'bob', 'cid'].map((name) => em.create(CentralUserEntity, { name, email: `${name}@x.test`, password: 'hash' } as never))
  await em.flush()
  const [ann, bob, cid] = users.map((u) => String((u as { globalId: string }).globalId)) as [string, string, string]
  for (const gid of [ann, bob, cid]) await app.tenancy.sync!.attach('users', gid, tenant)
  await app.tenancy.sync!.settle()
  const bundle = await exported(app, 'acme')
  const manifest = JSON.parse(bundle.toString('utf8').split('\n')[1]?.slice('@manifest '.length) ?? '{}')
  assert.deepEqual(manifest.resources.map((r: { name: string, rows: Array<Record<string, unknown>> }) => [r.name, r.rows.map((row) => row.global_id).sort()]), [['users', [ann, bob, cid].sort()]])
  // cid is deleted centrally after the export: the import cannot map it and says so.
  await em.nativeDelete(CentralUserEntity, { globalId: cid })
  const copies = async (x: Tenant): Promise<unknown> => await app.tenancy.run(x, async (scope) => await scope.em.getConnection().execute('select global_id, name, email from users where global_id in (?, ?) order by global_id', [ann, bob]))
  const mappings = async (x: Tenant): Promise<unknown> => (await sql(central.url, 'select global_user_id from tenancy.tenant_users where tenant_key = $1 order by 1', [x.key])).map((r) => r.global_user_id)
  const { tenant: copy, resources } = await app.tenancy.bundles.restore(Readable.from(bundle), { as: 'acme-restored' })
  assert.equal(resources.attached, 2)
  assert.deepEqual(resources.unmapped, [{ resource: 'users', globalId: cid, reason: 'missing' }])
  await app.tenancy.sync!.settle()
  assert.deepEqual(await mappings(copy), [ann, bob].sort(), 'the new tenant has the resources mapped')
  assert.deepEqual(await mappings(tenant), [ann, bob].sort(), 'the original keeps its own mappings (cid\'s went with its central row)')
  assert.deepEqual(await copies(copy), await copies(tenant))
  // A later central change reaches the imported tenant's copy (and the original's).
  const jane = await em.findOneOrFail(CentralUserEntity, { globalId: ann } as never)
  ;(jane as { name: string }).name = 'Ann Renamed'
  await em.flush()
  await app.tenancy.sync!.settle()
  const names = async (x: Tenant): Promise<unknown> => await app.tenancy.run(x, async (scope) => await scope.em.getConnection().execute('select name from users where global_id = ?', [ann]))
  assert.deepEqual(await names(copy), [{ name: 'Ann Renamed' }])
  assert.deepEqual(await names(tenant), [{ name: 'Ann Renamed' }])
})
