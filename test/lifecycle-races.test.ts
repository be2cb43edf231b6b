import { test } from 'node:test'
import { fork } from 'node:child_process'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { buildApp } from './helpers/app.js'
import { dropDatabases, serverUrl, sql, urlFor } from './helpers/database.js'
import { tenancyPlugin } from '../server/index.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'
import { centralMigrations } from '../migrations/central/index.js'
import { tenancyRuntime } from '../server/tenancy.js'
import { repeat, within } from './helpers/poll.js'
import { randomFor } from './helpers/random.js'

/** The tenant databases on the server (template, spares and scratch databases left out), by name. */
async function tenantDatabases (prefix: string): Promise<string[]> {
  const rows = await sql<{ datname: string }>(serverUrl(), 'select datname from pg_database where starts_with(datname, $1) order by 1', [prefix])
  return rows.map((r) => r.datname).filter((name) => /^[0-9a-f]{32}$/.test(name.slice(prefix.length)))
}

test('50 concurrent creates, provisions, deletes and migrates of the same tenants from two instances leave every row with its database and every database with its row', async (t) => {
  const options = { provisioning: { spares: 0 } }
  const one = await buildApp(t, options)
  const two = await buildApp(t, options, () => {}, one.central)
  const prefix = one.central.prefix
  const tenants = Array.from({ length: 6 }, (_, i) => ({ key: uuidv7(), identifier: `race-${i}` }))
  // Seeded, so a failing mix can be replayed (the seed is printed when it fails).
  const next = randomFor(t, 10)
  const ops = Array.from({ length: 50 }, () => ({
    app: next() < 0.5 ? one.app : two.app,
    tenant: tenants[Math.floor(next() * tenants.length)] as { key: string, identifier: string },
    op: (['create', 'create', 'provision', 'delete', 'migrate'] as const)[Math.floor(next() * 5)] as 'create' | 'provision' | 'delete' | 'migrate'
  }))
  const results = await Promise.allSettled(ops.map(async ({ app, tenant, op }) => {
    switch (op) {
      case 'create': return await app.tenancy.create({ key: tenant.key, identifier: tenant.identifier })
      case 'provision': return await app.tenancy.provision({ key: tenant.key })
      case 'delete': return await app.tenancy.delete({ key: tenant.key, databaseHost: null })
      case 'migrate': return await app.tenancy.migrate({ tenants: [tenant.key] })
    }
  }))
  // What may fail is what a user can be told: a tenant that exists already, or does not exist (yet, or any more).
  for (const [i, r] of results.entries()) {
    if (r.status === 'fulfilled') continue
    const code = (r.reason as { code?: string }).code
    assert.ok(['FST_TENANCY_IDENTIFIER_TAKEN', 'FST_TENANCY_MISCONFIGURED', 'FST_TENANCY_TENANT_NOT_FOUND'].includes(String(code)), `${ops[i]?.op}: ${String((r.reason as Error).message)}`)
  }
  const rows = await sql<{ key: string, status: string }>(one.central.url, 'select key, status from tenancy.tenants order by key')
  assert.deepEqual(rows.filter((r) => r.status !== 'active'), [], 'nothing left provisioning, failed or deleting')
  const expected = rows.map((r) => prefix + r.key.replaceAll('-', '')).sort()
  assert.deepEqual(await tenantDatabases(prefix), expected, 'no database without a tenant row, no tenant row without its database')
  assert.ok(results.some((r) => r.status === 'fulfilled'), 'the mix did something')
})

test('provision() waits for a create still running on another instance and never drops its database', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let seeding!: () => void
  const seeded = new Promise<void>((resolve) => { seeding = resolve })
  const one = await buildApp(t, {
    provisioning: {
      spares: 0,
      seeder: async (scope) => {
        seeding()
        await gate
        scope.em.create(ProjectEntity, { title: 'seeded' })
        await scope.em.flush()
      }
    }
  })
  const two = await buildApp(t, { provisioning: { spares: 0 } }, () => {}, one.central)
  const key = uuidv7()
  const creating = one.app.tenancy.create({ key, identifier: 'slow' })
  await seeded
  let provisioned = false
  const provisioning = two.app.tenancy.provision({ key }).then((tenant) => { provisioned = true; return tenant })
  // Give the provision every chance to act wrongly: its database must stay while the create runs.
  for (let i = 0; i < 20; i++) {
    const [row] = await sql<{ status: string }>(one.central.url, 'select status from tenancy.tenants where key = $1', [key])
    assert.equal(row?.status, 'provisioning')
    assert.equal(provisioned, false, 'provision() waits for the tenant lock')
    assert.equal((await tenantDatabases(one.central.prefix)).length, 1)
  }
  release()
  assert.equal((await creating).status, 'active')
  assert.equal((await provisioning).status, 'active', 'an active tenant is returned as it is')
  const titles = await one.app.tenancy.run(await one.app.tenancy.tenants.find(key) as any, async (scope) =>
    (await scope.em.find(ProjectEntity, {})).map((p) => p.title))
  assert.deepEqual(titles, ['seeded'], 'the database the create made is the one that stayed')
})

test('a tenant left provisioning by a crashed create is finished by provision(), replacing its half-made database', async (t) => {
  const { app, central } = await buildApp(t, { provisioning: { spares: 0 } })
  const key = uuidv7()
  // What a create that died after its first step leaves: the row, and an empty database (no migrations).
  await sql(central.url, 'insert into tenancy.tenants (key, identifier, name, status) values ($1, $2, $2, \'provisioning\')', [key, 'orphan'])
  const name = app.tenancy.tenants.databaseName({ key })
  await sql(serverUrl(), `create database "${name}"`)
  const tenant = await app.tenancy.provision({ key })
  assert.equal(tenant.status, 'active')
  assert.deepEqual((await app.tenancy.migrationStatus(tenant)).pending, [])
})

test('an instance killed in the middle of a create frees the tenant\'s lock, and provision() then finishes the tenant', async (t) => {
  const { app, central } = await buildApp(t, { provisioning: { spares: 0 } })
  const key = uuidv7()
  const child = fork(join('test', 'fixtures', 'crashing-create.ts'), [central.url, central.prefix, key], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.after(() => { child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => { resolve() })
    child.once('exit', (code) => { reject(new Error(`the creating process exited early (${String(code)})`)) })
  })
  child.kill('SIGKILL')
  await exited
  const [row] = await sql<{ status: string }>(central.url, 'select status from tenancy.tenants where key = $1', [key])
  assert.equal(row?.status, 'provisioning', 'the crash left the tenant provisioning')
  assert.equal((await tenantDatabases(central.prefix)).length, 1, 'with its half-made database')
  // PostgreSQL ended the dead process's lock transaction with its connection: provision() does not wait forever.
  const tenant = await app.tenancy.provision({ key })
  assert.equal(tenant.status, 'active')
  assert.deepEqual((await app.tenancy.migrationStatus(tenant)).pending, [])
})

test('a delete that fails halfway leaves the tenant deleting and not served, and deleting again finishes it', async (t) => {
  const { app, central } = await buildApp(t, { identification: ['header'], provisioning: { spares: 0 } }, (a) => {
    a.get('/t', async (request) => ({ tenant: request.tenant?.identifier }))
  })
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  const name = app.tenancy.tenants.databaseName(acme)
  assert.equal((await app.inject({ url: '/t', headers: { 'x-tenant': 'acme' } })).statusCode, 200)
  // A template database cannot be dropped: the drop step fails.
  await sql(serverUrl(), `alter database "${name}" with is_template true`)
  await assert.rejects(app.tenancy.delete(acme), /template database/)
  const [row] = await sql<{ status: string }>(central.url, 'select status from tenancy.tenants where key = $1', [acme.key])
  assert.equal(row?.status, 'deleting')
  const served = await app.inject({ url: '/t', headers: { 'x-tenant': 'acme' } })
  assert.equal(served.statusCode, 503)
  assert.equal(served.json().code, 'FST_TENANCY_TENANT_INACTIVE')
  await assert.rejects(app.tenancy.provision(acme), { code: 'FST_TENANCY_TENANT_DELETING' })
  await sql(serverUrl(), `alter database "${name}" with is_template false`)
  await app.tenancy.delete(acme)
  assert.deepEqual(await sql(central.url, 'select key from tenancy.tenants'), [])
  assert.deepEqual(await sql(central.url, 'select domain from tenancy.domains'), [])
  assert.deepEqual(await tenantDatabases(central.prefix), [])
})

test('deleting a Parent Tenant with other members is refused before anything is dropped', async (t) => {
  const { app, central } = await buildApp(t, { provisioning: { spares: 0 } })
  const parent = await app.tenancy.create({ identifier: 'parent' })
  const member = await app.tenancy.create({ identifier: 'member' })
  const cluster = await app.tenancy.clusters.create({ name: 'Region' })
  await app.tenancy.clusters.attach(cluster.id, [parent.key])
  await app.tenancy.clusters.attach(cluster.id, [member.key])
  await assert.rejects(app.tenancy.delete(parent), { code: 'FST_TENANCY_CLUSTER_RULE' })
  const [row] = await sql<{ status: string }>(central.url, 'select status from tenancy.tenants where key = $1', [parent.key])
  assert.equal(row?.status, 'active')
  assert.equal((await tenantDatabases(central.prefix)).length, 2)
})

test('two instances filling spares at once never hold more than the spare count and never drop each other\'s spares', async (t) => {
  const options = { provisioning: { spares: 3 } }
  const one = await buildApp(t, options)
  const two = await buildApp(t, options, () => {}, one.central)
  const sparePrefix = `${one.central.prefix}spare_`
  // The sampler: its own connection, every 10 ms, keeping the peak and every spare (by oid, which a rename keeps) it saw.
  const sampler = new pg.Client({ connectionString: serverUrl() })
  await sampler.connect()
  let peak = 0
  const seen = new Set<number>()
  const sampled = repeat(async () => {
    const rows = (await sampler.query('select oid::int as oid from pg_database where starts_with(datname, $1)', [sparePrefix])).rows as Array<{ oid: number }>
    peak = Math.max(peak, rows.length)
    for (const r of rows) seen.add(r.oid)
  }, { everyMs: 10 })
  try {
    // Every create takes a spare (when there is one) and starts a refill: two instances refill at once, again and again.
    await Promise.all([one.app, two.app].flatMap((app, a) => Array.from({ length: 4 }, async (_, i) => await app.tenancy.create({ identifier: `spare-${a}-${i}` }))))
    await Promise.all([tenancyRuntime(one.app.tenancy).idle(), tenancyRuntime(two.app.tenancy).idle()])
  } finally {
    await sampled.stop()
  }
  const now = await sampler.query('select oid::int as oid, datname from pg_database where starts_with(datname, $1)', [one.central.prefix])
  await sampler.end()
  const byOid = new Map((now.rows as Array<{ oid: number, datname: string }>).map((r) => [r.oid, r.datname]))
  assert.ok(peak <= 3, `at most 3 spares at any time, saw ${peak}`)
  assert.equal([...byOid.values()].filter((n) => n.startsWith(sparePrefix)).length, 3, 'the count is made up again')
  const tenantNames = new Set(await tenantDatabases(one.central.prefix))
  for (const oid of seen) {
    const name = byOid.get(oid)
    assert.ok(name !== undefined && (name.startsWith(sparePrefix) || tenantNames.has(name)), `spare ${oid} was dropped (it is neither a spare nor a tenant now)`)
  }
  assert.equal(tenantNames.size, 8)
})

test('two instances starting together on an empty central database both run the central migrations, one after the other', async (t) => {
  const name = `ft_mig_${uuidv7().slice(-8)}`
  await sql(serverUrl(), `create database "${name}"`)
  const apps: FastifyInstance[] = []
  t.after(async () => {
    for (const app of apps) await app.close()
    await dropDatabases(serverUrl(), name, `${name}_t_`)
  })
  await Promise.all([0, 1].map(async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: urlFor(name), prefix: `${name}_t_` }, migrateCentral: true })
    await app.ready()
  }))
  const ran = await sql<{ name: string }>(urlFor(name), 'select name from tenancy.fastify_tenancy_migrations order by id')
  assert.deepEqual(ran.map((r) => r.name), centralMigrations.map((m) => m.name))
})

test('lifecycle work nested deeper than the lock pool (a seeder creating a tenant, nine levels) finishes instead of waiting for a lock connection forever', async (t) => {
  let depth = 0
  const { app } = await buildApp(t, {
    provisioning: {
      spares: 0,
      // Each seeder runs under its tenant's lock and creates the next tenant, whose lock needs a connection too.
      seeder: async () => { if (depth < 9) { depth++; await app.tenancy.create({ identifier: `nested-${depth}` }) } }
    }
  })
  await within(app.tenancy.create({ identifier: 'nested-0' }), { timeoutMs: 60_000, what: 'the nested creates finish' })
  assert.equal((await app.tenancy.tenants.list({})).total, 10)
})
