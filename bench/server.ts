// A server for the overhead benchmark, run as a child process so the load
// generator and the server do not share one event loop. argv: bare|context|tenant port [centralUrl prefix]
import { AsyncLocalStorage } from 'node:async_hooks'
import Fastify from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const [mode, port, centralUrl, prefix] = process.argv.slice(2)
const app = Fastify({ logger: false })
if (mode === 'tenant') {
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url: centralUrl as string, prefix },
    centralDomains: ['localhost'],
    identification: ['subdomain', 'domain']
  })
}
if (mode === 'context') {
  // What the plugin does at the least to keep a request's tenant across its awaits:
  // the rest of the request runs inside an AsyncLocalStorage (on Node 20 every promise then pays a hook).
  const context = new AsyncLocalStorage<{ at: number }>()
  app.addHook('onRequest', (_request, _reply, done) => { context.run({ at: 0 }, done) })
}
// The same small handler on both sides; it touches no database, so the figure is the cost of resolution.
app.get('/hello', async () => ({ hello: 'world' }))
await app.listen({ port: Number(port), host: '127.0.0.1' })
process.send?.('ready')
process.on('message', (m) => { if (m === 'stop') app.close().then(() => process.exit(0)) })
