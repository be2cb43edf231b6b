// `npm start`: the demo app on an embedded PostgreSQL (or DATABASE_URL),
// with demo tenants acme and globex. Data is kept in .data/ between runs.
import Fastify from 'fastify'
import pg from 'pg'
import { startEmbeddedPostgres } from './embedded-postgres.js'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { CentralUserEntity } from '../index.js'
import { ensureDemoAdmin } from './demo-admin.js'
import { demoApp } from './app.js'
import { CentralCompanyEntity, companiesResource, demoCentralEntities } from './companies.js'
import { demoTenantEntities, demoTenantMigrations, ProjectEntity, TenantUserCopyEntity } from './tenant-schema.js'
import { runDemoCentralMigrations } from './migrations/central-migrations.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}".`)
  process.exit(2)
}

// DEMO_DATA_DIR lets the e2e tests run the demo on data of their own (and DEMO_PG_DURABLE=0
// skip fsync on it: data thrown away after the run).
const dataDir = process.env.DEMO_DATA_DIR ?? '.data'
let serverUrl = process.env.DATABASE_URL
let stopPostgres = async (): Promise<void> => {}
// DEMO_SECOND_HOST=1: a second embedded PostgreSQL as database host "second", so a tenant can be moved there
// (both servers with wal_level=logical, which a move between hosts replicates with).
const secondHost = process.env.DEMO_SECOND_HOST === '1'
const logical = { wal_level: 'logical', max_wal_senders: 20, max_replication_slots: 20, max_logical_replication_workers: 8 }
if (serverUrl === undefined || serverUrl === '') {
  const pgPort = Number(process.env.DEMO_PG_PORT ?? 54329)
  console.log(`Starting embedded PostgreSQL on port ${pgPort} (data in ${dataDir}/postgres)…`)
  const server = await startEmbeddedPostgres({ dataDir: `${dataDir}/postgres`, port: pgPort, persistent: true, reuseRunning: process.env.DEMO_REUSE_PG !== '0', durable: process.env.DEMO_PG_DURABLE !== '0', ...(secondHost ? { settings: logical } : {}) })
  serverUrl = server.url
  stopPostgres = server.stop
}
let hosts: Record<string, string> | undefined
if (secondHost) {
  console.log(`Starting a second embedded PostgreSQL, database host "second" (data in ${dataDir}/postgres-second)…`)
  const second = await startEmbeddedPostgres({ dataDir: `${dataDir}/postgres-second`, persistent: true, reuseRunning: false, settings: logical })
  const stopFirst = stopPostgres
  stopPostgres = async () => { await Promise.all([stopFirst(), second.stop()]) }
  hosts = { default: serverUrl, second: second.url }
}

// The demo keeps its central database next to the server's maintenance database.
const centralUrl = new URL(serverUrl)
centralUrl.pathname = '/fastify_tenancy_demo'
const admin = new pg.Client({ connectionString: serverUrl })
await admin.connect()
const exists = await admin.query('select 1 from pg_database where datname = $1', ['fastify_tenancy_demo'])
if (exists.rowCount === 0) await admin.query('create database fastify_tenancy_demo')
await admin.end()
// The demo's own central tables (synced companies), tracked apart from the library's, which
// the plugin migrates at register (migrateCentral: true below).
const ran = await runDemoCentralMigrations(centralUrl.toString())
if (ran.length > 0) console.log(`Central migrations applied: ${ran.join(', ')}`)

// The cookie secret is kept in .data/ so sessions survive a restart.
await mkdir(dataDir, { recursive: true })
const secretFile = `${dataDir}/cookie-secret`
const cookieSecret = process.env.COOKIE_SECRET ?? await readFile(secretFile, 'utf8').catch(async () => {
  const secret = randomBytes(32).toString('base64url')
  await writeFile(secretFile, secret, { mode: 0o600 })
  return secret
})

const production = process.env.NODE_ENV === 'production'
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(demoApp, {
  port,
  production,
  tenancy: {
    database: { url: centralUrl.toString(), prefix: 'demo_', ...(hosts === undefined ? {} : { hosts, defaultHost: 'default' }) },
    migrateCentral: true,
    centralDomains: ['localhost', '127.0.0.1'],
    identification: ['subdomain', 'domain'],
    storageRoot: `${dataDir}/storage`,
    // Two synced resources: the shipped users, and the demo's companies with their own pivot.
    centralEntities: demoCentralEntities,
    // The demo's tenant tables, as any app gives its own: entities, and the folder of their migrations.
    tenantEntities: demoTenantEntities,
    tenantMigrations: demoTenantMigrations,
    sync: { mode: 'inline', resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }, companiesResource()] }
  },
  // __Host- cookies (Secure) work on https:// and on http://localhost; ADMIN_HTTP_COOKIES=1 serves
  // the admin over plain http on another host, without that protection (see docs/admin.md).
  admin: {
    cookieSecret,
    secureCookies: process.env.ADMIN_HTTP_COOKIES !== '1',
    production,
    ...(process.env.ADMIN_SIGN_IN_LIMIT === undefined ? {} : { signInLimit: { max: Number(process.env.ADMIN_SIGN_IN_LIMIT), minutes: 10 } })
  }
})
await app.ready()
// Tenants made before a new tenant migration get it now (new ones are made at the newest), as `fastify-tenancy tenants:migrate` would.
for (const result of await app.tenancy.migrate()) {
  if (!result.ok) console.warn(`Tenant ${result.identifier} could not be migrated: ${result.error ?? ''}`)
  else if (result.migrations.length > 0) console.log(`Tenant ${result.identifier}: ran ${result.migrations.join(', ')}`)
}

// The demo admin: from ADMIN_EMAIL and ADMIN_PASSWORD, or made up and printed once, with the
// fastify-tenancy command as an app would (see docs/cli.md).
const adminEmail = (process.env.ADMIN_EMAIL ?? 'admin@example.test').toLowerCase()
const demoAdmin = await ensureDemoAdmin(centralUrl.toString(), adminEmail, process.env.ADMIN_PASSWORD)
// The password was printed when the admin was made and is kept only as a hash: say how to get a new one.
const adminNotice = demoAdmin.created || process.env.ADMIN_PASSWORD !== undefined
  ? `  admin:    http://localhost:${port}/admin  (${adminEmail} / ${process.env.ADMIN_PASSWORD === undefined ? demoAdmin.password ?? '' : 'ADMIN_PASSWORD'})`
  : `  admin:    http://localhost:${port}/admin  (${adminEmail}; the password printed at its first start)
            forgot it? DATABASE_URL=${centralUrl.toString()} node bin/fastify-tenancy.mjs admin:reset-password --email ${adminEmail}
            (prints a new one), or start with ADMIN_PASSWORD=...`

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

// A demo company, synced into both demo tenants (its notes stay per tenant).
{
  const em = app.tenancy.orm.em.fork()
  if (await em.count(CentralCompanyEntity, {}) === 0) {
    const company = em.create(CentralCompanyEntity, { name: 'Initech', plan: 'pro' } as never)
    await em.flush()
    for (const identifier of ['acme', 'globex']) {
      const tenant = await app.tenancy.tenants.byIdentifier(identifier)
      if (tenant !== null) await app.tenancy.sync?.attach('companies', String(company.globalId), tenant)
    }
  }
}

const shutdown = async (): Promise<void> => {
  await app.close()
  await stopPostgres()
  process.exit(0)
}
process.once('SIGINT', () => { shutdown() })
process.once('SIGTERM', () => { shutdown() })

await app.listen({ port, host })
console.log(`
fastify-tenancy demo is up:
  central:  http://localhost:${port}/
  acme:     http://acme.localhost:${port}/
  globex:   http://globex.localhost:${port}/
${adminNotice}
`)
