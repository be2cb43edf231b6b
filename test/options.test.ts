import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { tenancyPlugin, type TenancyOptions } from '../server/index.js'
import { freshCentral, sql } from './helpers/database.js'
import { tenancyRuntime } from '../server/tenancy.js'

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
    ['tenantEntities', { database: db, tenantEntities: [] }],
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
  // Options are checked before anything connects to the database.
  assert.equal(await openConnections(central.name), connectionsBefore)
})

test('good options with every default register and answer', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, { database: { url: central.url, prefix: central.prefix } })
  app.get('/health', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
  await app.ready()
  t.after(async () => { await app.close() })
  assert.equal((await app.inject({ url: '/health', headers: { host: 'localhost' } })).statusCode, 200)
  const o = tenancyRuntime(app.tenancy).options
  assert.deepEqual(
    { centralDomains: o.centralDomains, identification: o.identification, provider: o.provider, defaultRouteMode: o.defaultRouteMode, header: o.header, cookie: o.cookie, cachePrefix: o.cachePrefix, strategy: o.strategy, poolCap: o.database.poolCap },
    { centralDomains: ['localhost', '127.0.0.1'], identification: ['subdomain', 'domain'], provider: { driver: 'orm' }, defaultRouteMode: 'tenant', header: 'x-tenant', cookie: 'tenant', cachePrefix: 'tenant:', strategy: 'database', poolCap: 50 }
  )
})

async function openConnections (database: string): Promise<number> {
  const url = new URL(process.env.DATABASE_URL as string)
  const rows = await sql<{ n: number }>(url.toString(), 'select count(*)::int as n from pg_stat_activity where datname = $1', [database])
  return Number(rows[0]?.n)
}
