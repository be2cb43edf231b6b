import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { Migration } from '@mikro-orm/migrations'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { tenantEntities, tenantMigrations } from './helpers/tenant-schema.js'
import { tenancyRuntime } from '../server/tenancy.js'
import type { TenancyOptions } from '../server/index.js'

const FLAG = 'Migration20270101000001_flag'

/** A deploy's new migration; its `up` waits for `slow.release` when the test holds it (an injected slow migration, no sleeps). */
const slow = { hold: false, entered: () => {}, release: () => {}, gate: Promise.resolve() }
function holdNextMigration (): { entered: Promise<void>, release: () => void } {
  let entered!: () => void
  const started = new Promise<void>((resolve) => { entered = resolve })
  let release!: () => void
  slow.gate = new Promise<void>((resolve) => { release = resolve })
  slow.hold = true
  slow.entered = entered
  slow.release = release
  return { entered: started, release: () => { slow.hold = false; release() } }
}

class Migration20270101000001Flag extends Migration {
  override async up (): Promise<void> {
    if (slow.hold) { slow.entered(); await slow.gate }
    this.addSql('alter table projects add column flagged boolean not null default false')
  }

  override async down (): Promise<void> {
    this.addSql('alter table projects drop column flagged')
  }
}

const before = tenantMigrations
const after = { migrationsList: [...tenantMigrations.migrationsList, { name: FLAG, class: Migration20270101000001Flag }] }

const routes = (app: FastifyInstance): void => {
  app.get('/flagged', { config: { tenancy: { requires: FLAG } } }, async (request) => ({ flagged: (await request.tenantEm.getConnection().execute('select count(*)::int as n from projects where flagged')) }))
  app.get('/plain', async (request) => ({ has: request.tenant?.migrations?.has(FLAG) ?? null, names: request.tenant?.migrations?.names ?? null }))
}

type Strategy = NonNullable<TenancyOptions['strategy']>

/** A tenant made by the previous deploy (without FLAG), then two instances of the new deploy (with it) on the same central database. */
async function rollout (
  t: Parameters<typeof buildApp>[0], strategy: Strategy, options: { bWaitMs?: number } = {}
): Promise<{ a: FastifyInstance, b: FastifyInstance, key: string }> {
  const old = await buildApp(t, { strategy, tenantEntities, tenantMigrations: before, provisioning: { template: false } })
  const tenant = await old.app.tenancy.create({ identifier: 'acme' })
  await old.app.close()
  const deploy = { strategy, tenantEntities, tenantMigrations: after, identification: ['header' as const] }
  const { app: a } = await buildApp(t, { ...deploy, database: { acquireTimeoutMs: 20_000 } }, routes, old.central)
  const { app: b } = await buildApp(t, { ...deploy, database: { acquireTimeoutMs: options.bWaitMs ?? 20_000 } }, routes, old.central)
  return { a, b, key: tenant.key }
}

const get = async (app: FastifyInstance, url: string): Promise<{ status: number, code?: string, retryAfter?: string, body: any }> => {
  const res = await app.inject({ url, headers: { 'x-tenant': 'acme' } })
  const body = res.json()
  return { status: res.statusCode, code: body.code, retryAfter: res.headers['retry-after'] as string | undefined, body }
}

for (const strategy of ['database', 'schema', 'shared'] as const) {
  test(`${strategy}: a route requiring a migration answers 503 FST_TENANCY_MIGRATING with Retry-After until the tenant has it, then 200 on both instances without a restart`, async (t) => {
    const { a, b } = await rollout(t, strategy)
    for (const app of [a, b]) {
      const refused = await get(app, '/flagged')
      assert.equal(refused.status, 503)
      assert.equal(refused.code, 'FST_TENANCY_MIGRATING')
      assert.ok(Number(refused.retryAfter) >= 1, 'Retry-After says when to come back')
      // A route that requires nothing is served, and tells what the tenant has.
      const plain = await get(app, '/plain')
      assert.equal(plain.status, 200)
      assert.equal(plain.body.has, false)
    }
    const results = await a.tenancy.migrate({ tenants: ['acme'] })
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    // The instance that migrated serves it at once.
    assert.equal((await get(a, '/flagged')).status, 200)
    assert.equal((await get(a, '/plain')).body.has, true)
    // The other one as soon as the announcement reaches it.
    await until(async () => (await get(b, '/flagged')).status === 200, { timeoutMs: 10_000, what: 'instance B serves the requiring route after A migrated' })
    assert.equal((await get(b, '/plain')).body.has, true)
  })
}

for (const strategy of ['database', 'schema'] as const) {
  test(`${strategy}: a request during a slow migration waits for it on another instance, then is served`, async (t) => {
    const { a, b, key } = await rollout(t, strategy)
    assert.equal((await get(b, '/flagged')).status, 503)
    const held = holdNextMigration()
    t.after(held.release)
    const migrating = a.tenancy.migrate({ tenants: ['acme'] })
    await held.entered
    const tenant = { key, identifier: 'acme' } as never
    await until(async () => tenancyRuntime(b.tenancy).migrationGate.migrating(tenant), { timeoutMs: 10_000, what: 'B hears that acme is being migrated' })
    let settled = false
    const waiting = get(b, '/flagged').finally(() => { settled = true })
    // Still waiting while the migration has not ended (checked after B's lock check had a chance to run).
    await until(async () => (await sql(a.tenancy.orm.config.getClientUrl(), 'select count(*)::int as n from pg_stat_activity where application_name = \'fastify-tenancy:lock\' and state = \'idle in transaction\''))[0]?.n >= 1, { timeoutMs: 5_000, what: 'B\'s request holds a lock connection waiting for the migration' })
    assert.equal(settled, false, 'the request waits while its tenant is being migrated')
    held.release()
    const served = await waiting
    assert.equal(served.status, 200, JSON.stringify(served.body))
    assert.ok((await migrating).every((r) => r.ok))
  })

  test(`${strategy}: a request during a slow migration gets 503 FST_TENANCY_MIGRATING after acquireTimeoutMs`, async (t) => {
    const { a, b, key } = await rollout(t, strategy, { bWaitMs: 400 })
    const held = holdNextMigration()
    t.after(held.release)
    const migrating = a.tenancy.migrate({ tenants: ['acme'] })
    await held.entered
    await until(async () => tenancyRuntime(b.tenancy).migrationGate.migrating({ key, identifier: 'acme' } as never), { timeoutMs: 10_000, what: 'B hears that acme is being migrated' })
    // Even a route that requires nothing waits for the migration, and gives up after the bound.
    const refused = await get(b, '/plain')
    assert.equal(refused.status, 503)
    assert.equal(refused.code, 'FST_TENANCY_MIGRATING')
    assert.equal(refused.retryAfter, '1')
    held.release()
    assert.ok((await migrating).every((r) => r.ok))
    assert.equal((await get(b, '/flagged')).status, 200)
  })
}

test('a migration mark left by a process that died does not hold requests: its lock is free', async (t) => {
  const { b, key } = await rollout(t, 'database')
  // What a crashed migrate leaves: the announcement that it began, and no lock (its session ended).
  await sql(b.tenancy.orm.config.getClientUrl(), 'select pg_notify(\'fastify_tenancy_migrating\', $1)', [`migrating:${key}`])
  await until(async () => tenancyRuntime(b.tenancy).migrationGate.migrating({ key, identifier: 'acme' } as never), { timeoutMs: 10_000, what: 'B hears the dead process\'s migration mark' })
  const served = await get(b, '/plain')
  assert.equal(served.status, 200)
  assert.equal(tenancyRuntime(b.tenancy).migrationGate.migrating({ key, identifier: 'acme' } as never), false)
})

test('a route requiring a migration that does not exist fails ready()', async (t) => {
  await assert.rejects(buildApp(t, { requires: 'Migration_typo' }), /Migration_typo/)
})
