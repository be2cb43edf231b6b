// `npm start`: the demo app on an embedded PostgreSQL (or DATABASE_URL),
// with demo tenants acme and globex. Data is kept in .data/ between runs.
import Fastify from 'fastify'
import pg from 'pg'
import { startEmbeddedPostgres } from '../database/embedded-postgres.js'
import { createCentralOrm, migrateCentral } from '../database/central.js'
import { ProjectEntity } from '../index.js'
import { demoApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}".`)
  process.exit(2)
}

let serverUrl = process.env.DATABASE_URL
let stopPostgres = async (): Promise<void> => {}
if (serverUrl === undefined || serverUrl === '') {
  const pgPort = Number(process.env.DEMO_PG_PORT ?? 54329)
  console.log(`Starting embedded PostgreSQL on port ${pgPort} (data in .data/postgres)…`)
  const server = await startEmbeddedPostgres({ dataDir: '.data/postgres', port: pgPort, persistent: true })
  serverUrl = server.url
  stopPostgres = server.stop
}

// The demo keeps its central database next to the server's maintenance database.
const centralUrl = new URL(serverUrl)
centralUrl.pathname = '/fastify_tenancy_demo'
const admin = new pg.Client({ connectionString: serverUrl })
await admin.connect()
const exists = await admin.query('select 1 from pg_database where datname = $1', ['fastify_tenancy_demo'])
if (exists.rowCount === 0) await admin.query('create database fastify_tenancy_demo')
await admin.end()
const orm = createCentralOrm({ url: centralUrl.toString() })
const ran = await migrateCentral(orm)
await orm.close(true)
if (ran.length > 0) console.log(`Central migrations applied: ${ran.join(', ')}`)

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(demoApp, {
  port,
  production: process.env.NODE_ENV === 'production',
  tenancy: {
    database: { url: centralUrl.toString(), prefix: 'demo_' },
    centralDomains: ['localhost', '127.0.0.1'],
    identification: ['subdomain', 'domain'],
    storageRoot: '.data/storage'
  }
})
await app.ready()

const demoTenants = [
  { identifier: 'acme', name: 'Acme Corporation', domains: ['acme.localhost'], projects: ['Rocket skates', 'Giant magnet', 'Portable hole'] },
  { identifier: 'globex', name: 'Globex', domains: ['globex.localhost'], projects: ['Doomsday device', 'Hammock district'] }
]
for (const demo of demoTenants) {
  const existing = await app.tenancy.tenants.byIdentifier(demo.identifier)
  if (existing !== null && existing.status === 'active') continue
  const tenant = existing ?? await app.tenancy.create({ identifier: demo.identifier, name: demo.name, domains: demo.domains })
  const ready = tenant.status === 'active' ? tenant : await app.tenancy.provision(tenant)
  await app.tenancy.run(ready, async (scope) => {
    for (const title of demo.projects) scope.em.create(ProjectEntity, { title })
    await scope.em.flush()
  })
  console.log(`Created demo tenant ${demo.identifier} with its own database.`)
}

const shutdown = async (): Promise<void> => {
  await app.close()
  await stopPostgres()
  process.exit(0)
}
process.once('SIGINT', () => { void shutdown() })
process.once('SIGTERM', () => { void shutdown() })

await app.listen({ port, host })
console.log(`
fastify-tenancy demo is up:
  central:  http://localhost:${port}/
  acme:     http://acme.localhost:${port}/
  globex:   http://globex.localhost:${port}/
`)
