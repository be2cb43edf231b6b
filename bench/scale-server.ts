// A server for the connection and overhead benchmarks, run as a child process
// so the load generator and the server do not share one event loop.
// argv: mode port centralUrl prefix [warm tenant count]
//   database | schema: GET /projects lists the projects of the tenant in x-tenant (budget 20 per host)
//   tenant-read: GET /read reads one row through request.tenantEm (tenant in x-tenant), logger on
//   plain-read: the same read in a plain Fastify + MikroORM app on one database, with RequestContext
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { MikroORM, PostgreSqlDriver, RequestContext } from '@mikro-orm/postgresql'
import { tenancyPlugin } from '../server/index.js'
import { ProjectEntity, tenantEntities, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const [mode, port, centralUrl, prefix, extra] = process.argv.slice(2) as [string, string, string, string, string | undefined]
// Logging on, to a stream that discards: the cost of the logger counts, not the terminal's.
const logger = { level: 'info', stream: new Writable({ write (_chunk, _encoding, done) { done() } }) }
const app = Fastify({ logger: mode.endsWith('-read') ? logger : false })

if (mode === 'plain-read') {
  const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: extra as string, entities: tenantEntities, contextName: 'bench:plain', pool: { min: 0, max: 2 }, allowGlobalContext: false })
  app.addHook('onRequest', (_request, _reply, done) => { RequestContext.create(orm.em, done) })
  app.addHook('onClose', async () => { await orm.close(true) })
  app.get('/read', async () => await orm.em.findOne(ProjectEntity, { id: 1 }))
} else {
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url: centralUrl, prefix, maxConnections: 20, poolSize: 2 },
    strategy: mode === 'schema' ? 'schema' : 'database',
    identification: ['header'],
    // Room for every tenant of the benchmark: the figure is the connections', not the cache's.
    cache: { max: 20_000, ttlMs: 3_600_000, listen: false },
    provisioning: { spares: 0 }
  })
  if (mode === 'tenant-read') app.get('/read', async (request) => await request.tenantEm.findOne(ProjectEntity, { id: 1 }))
  else app.get('/projects', async (request) => (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title))
}
await app.ready()
// Every tenant in the cache once, as a server that has run a while has them.
const warm = mode === 'database' || mode === 'schema' ? Number(extra ?? 0) : 0
let next = 0
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < warm) await app.tenancy.tenants.byIdentifier(`t${next++}`)
}))
await app.listen({ port: Number(port), host: '127.0.0.1' })
process.send?.('ready')
process.on('message', (m) => {
  if (m === 'stats') process.send?.({ stats: app.tenancy?.stats() ?? null })
  if (m === 'stop') app.close().then(() => process.exit(0))
})
