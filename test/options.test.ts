import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { tenancyPlugin, type TenancyOptions } from '../server/index.js'
import { freshCentral, sql } from './helpers/database.js'
import { tenancyRuntime } from '../server/tenancy.js'
import { resolveOptions } from '../server/options/index.js'
import { createCentralOrm } from '../server/database/central.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

test('a wrong option makes ready() reject with FST_TENANCY_INVALID_OPTION, and the message names the option', async (t) => {
  const central = await freshCentral(t)
  const db = { url: central.url, prefix: central.prefix }
  const provider = (): { name: string, byIdentifier: () => Promise<null>, byKey: () => Promise<null>, byResourceKey: () => Promise<null> } =>
    ({ name: 'x', byIdentifier: async () => null, byKey: async () => null, byResourceKey: async () => null })
  const cases: Array<[option: string, options: unknown]> = [
    // The central database.
    ['database', undefined],
    ['database', {}],
    ['database', { database: 'postgres://localhost/x' }],
    ['database.url', { database: {} }],
    ['database.url', { database: { url: 42 } }],
    ['database.url', { database: { url: 'not a url' } }],
    ['database.url', { database: { url: 'mysql://localhost/central' } }],
    ['database.url', { database: { url: 'postgres://user:pw@localhost:5432/' } }],
    ['database.url', { database: { url: 'postgres://localhost' } }],
    ['database.poolCap', { database: { ...db, poolCap: 0 } }],
    ['database.poolCap', { database: { ...db, poolCap: -5 } }],
    ['database.poolCap', { database: { ...db, poolCap: '10' } }],
    ['database.poolSize', { database: { ...db, poolSize: 1.5 } }],
    ['database.idleTimeoutMs', { database: { ...db, idleTimeoutMs: 0 } }],
    ['database.prefix', { database: { ...db, prefix: 'Bad-Prefix' } }],
    ['database.prefix', { database: { ...db, prefix: 'x'.repeat(41) } }],
    ['database.suffix', { database: { ...db, suffix: '"; drop' } }],
    ['database.prefix', { database: { ...db, prefix: 'p'.repeat(20), suffix: 's'.repeat(20) } }],
    ['database.hosts', { database: { ...db, hosts: {} } }],
    ['database.hosts', { database: { ...db, hosts: ['postgres://localhost/x'] } }],
    ['database.hosts.Main Host', { database: { ...db, hosts: { 'Main Host': central.url } } }],
    ['database.hosts.second', { database: { ...db, hosts: { main: central.url, second: 'http://localhost' } } }],
    ['database.defaultHost', { database: { ...db, defaultHost: 'nowhere' } }],
    // Identification.
    ['identification', { database: db, identification: ['dns'] }],
    ['identification', { database: db, identification: [] }],
    ['identification', { database: db, identification: 'header' }],
    ['identification', { database: db, identification: [{ name: 'query' }] }],
    ['centralDomains', { database: db, centralDomains: [] }],
    ['centralDomains', { database: db, centralDomains: 'example.com' }],
    ['centralDomains', { database: db, centralDomains: ['Example.COM'] }],
    ['centralDomains', { database: db, centralDomains: ['example.com', ''] }],
    ['centralDomains', { database: db, centralDomains: ['exa mple.com'] }],
    ['centralDomains', { database: db, centralDomains: ['example.com:8080'] }],
    ['centralDomains', { database: db, centralDomains: ['xn--bcher-kva.example'] }],
    ['centralDomains', { database: db, centralDomains: ['shop.xn--p1ai'] }],
    ['centralDomains', { database: db, centralDomains: [`${'a.'.repeat(130)}com`] }],
    ['centralDomains', { database: db, centralDomains: [42] }],
    ['header', { database: db, header: 'x tenant' }],
    ['header', { database: db, header: '' }],
    ['cookie', { database: db, cookie: 'ten;ant' }],
    ['pathParameter', { database: db, pathParameter: 'tenant-id' }],
    ['defaultRouteMode', { database: db, defaultRouteMode: 'sometimes' }],
    ['defaultRouteMode', { database: db, defaultRouteMode: 'TENANT' }],
    // Providers and their cache.
    ['provider', { database: db, provider: 'orm' }],
    ['provider', { database: db, provider: {} }],
    ['provider.driver', { database: db, provider: { driver: 'redis' } }],
    ['providerDrivers', { database: db, providerDrivers: [] }],
    ['providerDrivers.memory', { database: db, providerDrivers: { memory: 'not a function' } }],
    ['providerDrivers.orm', { database: db, providerDrivers: { orm: provider } }],
    ['cache', { database: db, cache: true }],
    ['cache.ttlMs', { database: db, cache: { ttlMs: -1 } }],
    ['cache.max', { database: db, cache: { max: 0 } }],
    ['cache.missTtlMs', { database: db, cache: { missTtlMs: 1.5 } }],
    ['cache.listen', { database: db, cache: { listen: 'yes' } }],
    // Context, provisioning and the rest.
    ['tenantEntities', { database: db, tenantEntities: {} }],
    ['tenantMigrations', { database: db, tenantMigrations: {} }],
    ['tenantMigrations', { database: db, tenantMigrations: 'migrations/tenant' }],
    ['tenantMigrations.tableName', { database: db, tenantMigrations: { path: 'migrations/tenant', tableName: 'mine' } }],
    ['tenantMigrations.migrationsList', { database: db, tenantMigrations: { migrationsList: ['Migration1'] } }],
    ['bootstrappers', { database: db, bootstrappers: {} }],
    ['bootstrappers', { database: db, bootstrappers: [{ name: 'x' }] }],
    ['storageRoot', { database: db, storageRoot: '' }],
    ['cachePrefix', { database: db, cachePrefix: 7 }],
    ['migrateCentral', { database: db, migrateCentral: 'yes' }],
    ['strategy', { database: db, strategy: 'table' }],
    ['provisioning', { database: db, provisioning: [] }],
    ['provisioning.template', { database: db, provisioning: { template: 'no' } }],
    ['provisioning.spares', { database: db, provisioning: { spares: -1 } }],
    ['provisioning.spares', { database: db, provisioning: { spares: 101 } }],
    ['provisioning.seeder', { database: db, provisioning: { seeder: 'seed.ts' } }],
    ['provisioning.placement', { database: db, provisioning: { placement: 'fewest' } }],
    ['sync', { database: db, sync: [] }],
    ['sync.resources', { database: db, sync: { resources: [] } }],
    ['sync.resources', { database: db, sync: { resources: [{ name: 'users' }] } }],
    ['sync.mode', { database: db, sync: { resources: [{ name: 'users', central: {}, tenant: {}, attributes: [] }], mode: 'later' } }],
    ['queueSchema', { database: db, queueSchema: 'Queue-Schema' }],
    ['queueMaintenanceSeconds', { database: db, queueMaintenanceSeconds: 0 }]
  ]
  const connectionsBefore = await openConnections(central.name)
  for (const [option, options] of cases) {
    const label = `${option}: ${String(JSON.stringify(options))}`
    const app = Fastify({ logger: false })
    app.register(tenancyPlugin, options as TenancyOptions)
    try {
      await assert.rejects(async () => { await app.ready() }, (e: any) => {
        assert.equal(e.code, 'FST_TENANCY_INVALID_OPTION', `${label}: ${String(e.message)}`)
        assert.ok(e.message.startsWith(`Option "${option}" `), `${label}: ${String(e.message)}`)
        return true
      }, label)
    } finally {
      await app.close().catch(() => {})
    }
  }
  // Options are checked before anything connects to the database (a connection
  // left closing from making the database may be gone by now, never a new one).
  assert.ok(await openConnections(central.name) <= connectionsBefore)
})

test('good options with every default register and answer', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix } })
  app.get('/health', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
  await app.ready()
  t.after(async () => { await app.close() })
  assert.equal((await app.inject({ url: '/health', headers: { host: 'localhost' } })).statusCode, 200)
  const o = tenancyRuntime(app.tenancy).options
  assert.deepEqual(
    {
      centralDomains: o.centralDomains,
      identification: o.identification,
      provider: o.provider,
      defaultRouteMode: o.defaultRouteMode,
      header: o.header,
      cookie: o.cookie,
      cachePrefix: o.cachePrefix,
      strategy: o.strategy,
      poolCap: o.database.poolCap
    },
    {
      centralDomains: ['localhost', '127.0.0.1'],
      identification: ['subdomain', 'domain'],
      provider: { driver: 'orm' },
      defaultRouteMode: 'tenant',
      header: 'x-tenant',
      cookie: 'tenant',
      cachePrefix: 'tenant:',
      strategy: 'database',
      poolCap: undefined
    }
  )
})

async function openConnections (database: string): Promise<number> {
  const url = new URL(process.env.DATABASE_URL as string)
  // Client connections only: an autovacuum worker visiting the new database is PostgreSQL's own.
  const rows = await sql<{ n: number }>(url.toString(), "select count(*)::int as n from pg_stat_activity where datname = $1 and backend_type = 'client backend'", [database])
  return Number(rows[0]?.n)
}

test('values JSON cannot describe are checked by shape: entity schemas, functions, resolver and bootstrapper objects, a MikroORM instance', () => {
  const db = { url: 'postgres://localhost/central' }
  const refused: Array<[option: string, options: unknown]> = [
    ['tenantEntities', { database: db, tenantEntities: [{ name: 'Project' }] }],
    ['tenantEntities', { database: db, tenantEntities: ['Project'] }],
    ['identification', { database: db, identification: [{ name: 'query', resolve: 'query' }] }],
    ['bootstrappers', { database: db, bootstrappers: [{ name: 'x', bootstrap: () => {}, revert: 1 }] }],
    ['provisioning.steps', { database: db, provisioning: { steps: ['seed'] } }],
    ['provider.entity', { database: db, provider: { driver: 'orm', entity: 'tenants' } }],
    ['orm', { database: db, orm: {} }],
    ['orm', { database: db, orm: { em: {}, close: () => {} } }],
    ['sync.resources', { database: db, sync: { resources: [{ name: 'users', central: {}, tenant: {}, attributes: ['email'] }] } }]
  ]
  for (const [option, options] of refused) {
    assert.throws(() => resolveOptions(options), (e: any) => e.code === 'FST_TENANCY_INVALID_OPTION' && e.message.startsWith(`Option "${option}" `), option)
  }
  // A bootstrapper may be a class instance whose methods sit on its prototype.
  class Audit { name = 'audit'; async bootstrap (): Promise<void> {} async revert (): Promise<void> {} }
  const audit = new Audit()
  const resolved = resolveOptions({ database: db, bootstrappers: [audit], tenantEntities: [ProjectEntity], provisioning: { seeder: async () => {} } })
  assert.equal(resolved.bootstrappers[0], audit)
  assert.equal(resolved.tenantEntities[0], ProjectEntity)
  assert.equal(typeof resolved.provisioning.seeder, 'function')
  assert.equal(resolved.provisioning.placement, null)
})

test('an unknown or misspelt option is refused by name, and Fastify\'s own register options are let through', () => {
  const db = { url: 'postgres://localhost/central' }
  assert.throws(() => resolveOptions({ database: db, centralDomain: ['example.com'] }), (e: any) => e.code === 'FST_TENANCY_INVALID_OPTION' && e.message.startsWith('Option "centralDomain" is not an option'))
  assert.throws(() => resolveOptions({ database: { ...db, poolsize: 4 } }), (e: any) => e.message.startsWith('Option "database.poolsize" '))
  assert.throws(() => resolveOptions({ database: db, cache: { ttl: 5 } }), (e: any) => e.message.startsWith('Option "cache.ttl" '))
  assert.equal(resolveOptions({ database: db, prefix: '/api', logLevel: 'warn' }).header, 'x-tenant')
})

test('resolving fills the defaults without changing the app\'s object', () => {
  const given = { database: { url: 'postgres://localhost/central', hosts: { eu: 'postgres://eu/x', us: 'postgres://us/x' } }, cache: { ttlMs: 5 }, provisioning: { spares: 0 } }
  const before = JSON.stringify(given)
  const o = resolveOptions(given)
  assert.equal(JSON.stringify(given), before)
  // Options other work adds later get defaults too; these are the ones this test is about.
  const pick = (o: object, keys: string[]): Record<string, unknown> => Object.fromEntries(keys.map((k) => [k, (o as Record<string, unknown>)[k]]))
  assert.deepEqual(pick(o.database, ['url', 'hosts', 'defaultHost', 'prefix', 'suffix', 'poolCap', 'poolSize', 'idleTimeoutMs', 'debug']),
    { url: 'postgres://localhost/central', hosts: given.database.hosts, defaultHost: 'eu', prefix: 'tenant_', suffix: '', poolCap: undefined, poolSize: 2, idleTimeoutMs: 10_000, debug: false })
  assert.deepEqual(o.cache === false ? false : pick(o.cache, ['max', 'ttlMs', 'missTtlMs', 'listen']), { max: 10_000, ttlMs: 5, missTtlMs: 2_000, listen: true })
  assert.deepEqual(o.provisioning, { template: true, spares: 0, seeder: null, steps: null, placement: null })
  assert.equal(o.sync, null)
  assert.equal(o.orm, null)
  // Two resolutions never share a default array.
  const other = resolveOptions({ database: given.database })
  other.centralDomains.push('example.com')
  assert.deepEqual(resolveOptions({ database: given.database }).centralDomains, ['localhost', '127.0.0.1'])
})

test('an app\'s own MikroORM instance passes the orm option', async (t) => {
  const central = await freshCentral(t)
  const orm = createCentralOrm({ url: central.url })
  t.after(async () => { await orm.close(true) })
  const o = resolveOptions({ database: { url: central.url }, orm })
  assert.equal(o.orm, orm)
})

test('strategy shared needs the shared option and only it takes one; its defaults and central role are filled in', () => {
  const db = { url: 'postgres://central_role:pw@localhost/central' }
  const refuses = (options: unknown, option: string): void => {
    assert.throws(() => resolveOptions(options), (e: any) => e.code === 'FST_TENANCY_INVALID_OPTION' && e.message.startsWith(`Option "${option}" `), option)
  }
  refuses({ database: db, strategy: 'shared' }, 'shared')
  refuses({ database: db, shared: { url: 'postgres://app_role@localhost/shared' } }, 'shared')
  refuses({ database: db, strategy: 'shared', shared: { url: 'mysql://app@localhost/shared' } }, 'shared.url')
  refuses({ database: db, strategy: 'shared', shared: { url: 'postgres://central_role@localhost/shared' } }, 'shared.url')
  refuses({ database: db, strategy: 'shared', shared: { url: 'postgres://app_role@localhost/shared', poolSize: 0 } }, 'shared.poolSize')
  const o = resolveOptions({ database: db, strategy: 'shared', shared: { url: 'postgres://app_role@localhost/shared' } })
  assert.deepEqual(o.shared, {
    url: 'postgres://app_role@localhost/shared',
    centralUrl: 'postgres://central_role:pw@localhost/shared',
    centralRole: 'central_role',
    schema: 'tenant_shared',
    poolSize: 10,
    deleteBatch: 1000
  })
  assert.equal(resolveOptions({ database: db }).shared, null)
})
