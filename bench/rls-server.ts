// A server for the rls benchmark, run as a child process so the load
// generator and the server do not share one event loop.
// argv: rls|plain port centralUrl prefix appUrl [tenants to put in the cache before ready]
import Fastify from 'fastify'
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import { tenancyPlugin } from '../server/index.js'
import { ProjectEntity, tenantEntities, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'
import { sharedTenantEntities } from '../server/database/shared/tenant-entities.js'

const [mode, port, centralUrl, prefix, appUrl, warm] = process.argv.slice(2) as [string, string, string, string, string, string | undefined]
const app = Fastify({ logger: false })
await app.register(tenancyPlugin, {
  ...TEST_TENANT_SCHEMA,
  database: { url: centralUrl, prefix },
  strategy: 'shared',
  shared: { url: appUrl, poolSize: 10 },
  identification: ['header'],
  // Room for every tenant of the benchmark: the figure is the database's, not the cache's.
  cache: { max: 200_000, ttlMs: 3_600_000, listen: false }
})
if (mode === 'rls') {
  // Row-level security on: the ORM filter adds the WHERE, each statement sets the tenant, the policy holds.
  app.get('/projects', async (request) => (await request.tenantEm.find(ProjectEntity, {})).map((p) => p.title))
} else {
  // Policies off: the same entities and filter (an explicit WHERE tenant_key = $1) on a copy of the tables without RLS, no set_config.
  const plain = await MikroORM.init({
    driver: PostgreSqlDriver,
    clientUrl: appUrl,
    schema: 'tenant_plain',
    entities: sharedTenantEntities(tenantEntities, () => app.tenancy.current()?.key ?? null),
    contextName: 'bench:plain',
    pool: { min: 0, max: 10 },
    allowGlobalContext: false
  })
  app.addHook('onClose', async () => { await plain.close(true) })
  app.get('/projects', async () => (await plain.em.fork().find(ProjectEntity, {})).map((p) => p.title))
}
await app.ready()
// Every tenant in the cache once (in process, 32 at a time), as a server that has run a while has them.
const warmCount = Number(warm ?? 0)
let next = 0
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < warmCount) await app.tenancy.tenants.byIdentifier(`t${next++}`)
}))
await app.listen({ port: Number(port), host: '127.0.0.1' })
process.send?.('ready')
process.on('message', (m) => { if (m === 'stop') app.close().then(() => process.exit(0)) })
