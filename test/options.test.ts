import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { freshCentral } from './helpers/database.js'

test('a wrong option makes registering fail with FST_TENANCY_INVALID_OPTION naming the option', async (t) => {
  const central = await freshCentral(t)
  const db = { url: central.url }
  const cases: Array<[string, unknown]> = [
    ['database', {}],
    ['database.url', { database: { url: 'mysql://x/y' } }],
    ['database.url', { database: { url: 42 } }],
    ['database.poolCap', { database: { ...db, poolCap: 0 } }],
    ['database.poolSize', { database: { ...db, poolSize: 1.5 } }],
    ['database.prefix', { database: { ...db, prefix: 'Bad-Prefix' } }],
    ['database.hosts', { database: { ...db, hosts: {} } }],
    ['database.defaultHost', { database: { ...db, defaultHost: 'nowhere' } }],
    ['identification', { database: db, identification: ['dns'] }],
    ['identification', { database: db, identification: [] }],
    ['defaultRouteMode', { database: db, defaultRouteMode: 'sometimes' }],
    ['provider.driver', { database: db, provider: { driver: 'redis' } }],
    ['centralDomains', { database: db, centralDomains: ['Example.COM'] }],
    ['header', { database: db, header: 'x tenant' }],
    ['cache.ttlMs', { database: db, cache: { ttlMs: -1 } }],
    ['strategy', { database: db, strategy: 'table' }],
    ['provisioning.spares', { database: db, provisioning: { spares: -1 } }],
    ['sync.resources', { database: db, sync: { resources: [] } }],
    ['bootstrappers', { database: db, bootstrappers: [{ name: 'x' }] }]
  ]
  for (const [option, options] of cases) {
    const app = Fastify({ logger: false })
    await assert.rejects(async () => {
      await app.register(tenancyPlugin, options as never)
      await app.ready()
    }, (e: any) => e.code === 'FST_TENANCY_INVALID_OPTION' && e.message.includes(`"${option}"`), `${option}: ${JSON.stringify(options)}`)
    await app.close().catch(() => {})
  }
})

test('good options with every default register and answer', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, { database: { url: central.url, prefix: central.prefix } })
  app.get('/health', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
  await app.ready()
  t.after(async () => { await app.close() })
  assert.equal((await app.inject({ url: '/health', headers: { host: 'localhost' } })).statusCode, 200)
})
