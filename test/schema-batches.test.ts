import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Migration } from '@mikro-orm/migrations'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { until } from './helpers/poll.js'
import { tenantMigrations } from './helpers/tenant-schema.js'
import { MARKER, withMarker } from './helpers/rollouts.js'
import { mapLimit } from '../server/support/map-limit.js'
import { LockSpace, lockId } from '../server/database/advisory-locks.js'
import type { Tenant } from '../server/index.js'

/**
 * Strategy schema: a rollout sends the migrations of many tenants of a host
 * in one text (server/database/schema-batch.ts). Seen from outside, each
 * tenant must still get what it would get alone: its migrations once, its
 * own failure, its lock, its recorded state.
 */

/** Runs SQL of its own in up(): it cannot be sent in a batch's text, so its tenants go one by one. */
class Migration20261207000010RunsSql extends Migration {
  override async up (): Promise<void> {
    const [row] = await this.execute('select current_schema() as s')
    this.addSql(`create table ran_in (schema_name text); insert into ran_in values ('${String(row?.s)}')`)
  }
}

async function schemaTenants (app: FastifyInstance, n: number): Promise<Tenant[]> {
  return await mapLimit(Array.from({ length: n }, (_, i) => i), 4, async (i) => await app.tenancy.create({ identifier: `b${String(i).padStart(2, '0')}` }))
}

/** How many times each tenant's schema records `name`. */
async function runs (app: FastifyInstance, tenants: readonly Tenant[], name: string): Promise<number[]> {
  return await Promise.all(tenants.map(async (t) => {
    const target = app.tenancy.tenants.target(t)
    const rows = await sql<{ n: number }>(target.url, `select count(*)::int as n from "${target.schema as string}".fastify_tenancy_migrations where name = $1`, [name])
    return rows[0]?.n ?? 0
  }))
}

test('a batch with a failing tenant in its middle: that tenant fails alone with its reason, the tenants before and after it are migrated once', { timeout: 240_000 }, async (t) => {
  const { app, central } = await buildApp(t, { strategy: 'schema' })
  const tenants = await schemaTenants(app, 12)
  const bad = tenants[4] as Tenant
  const target = app.tenancy.tenants.target(bad)
  await sql(target.url, `create table "${target.schema as string}".rollout_marker (id integer primary key)`)
  const { app: next } = await buildApp(t, { strategy: 'schema', tenantMigrations: withMarker }, () => {}, central)
  // One worker: the twelve go in one batch, in identifier order.
  const started = await next.tenancy.rollouts.start({ concurrency: 1 })
  const done = await next.tenancy.rollouts.run(started.id)
  assert.deepEqual([done.counts.done, done.counts.failed], [11, 1])
  assert.deepEqual(done.failed.map((x) => x.identifier), [bad.identifier])
  assert.match(String(done.failed[0]?.error), /rollout_marker.*already exists/)
  assert.deepEqual(await runs(next, tenants, MARKER), tenants.map((x) => x === bad ? 0 : 1))
  // Recorded centrally as each tenant alone would be: up to date, or behind with the reason.
  const states = await next.tenancy.migrationStates(tenants.map((x) => x.key))
  for (const tenant of tenants) {
    const state = states.get(tenant.key)
    if (tenant === bad) {
      assert.match(String(state?.error), /already exists/)
    } else {
      assert.deepEqual(state?.pending, [], tenant.identifier)
      assert.equal(state?.error, null)
    }
  }
  // Mended by hand, the tenant is migrated by the next rollout, and the others are skipped without a connection.
  await sql(target.url, `drop table "${target.schema as string}".rollout_marker`)
  const again = await next.tenancy.rollouts.run((await next.tenancy.rollouts.start({ concurrency: 1 })).id)
  assert.deepEqual([again.counts.done, again.counts.skipped], [1, 11])
  assert.deepEqual(await runs(next, tenants, MARKER), tenants.map(() => 1))
})

test('a migration that runs SQL in up() is run tenant by tenant, in each tenant\'s schema', { timeout: 240_000 }, async (t) => {
  const { app, central } = await buildApp(t, { strategy: 'schema' })
  const tenants = await schemaTenants(app, 5)
  const name = 'Migration20261207000010_runs_sql'
  const list = { migrationsList: [...tenantMigrations.migrationsList, { name, class: Migration20261207000010RunsSql }] }
  const { app: next } = await buildApp(t, { strategy: 'schema', tenantMigrations: list }, () => {}, central)
  const done = await next.tenancy.rollouts.run((await next.tenancy.rollouts.start({ concurrency: 2 })).id)
  assert.equal(done.counts.done, 5)
  assert.deepEqual(await runs(next, tenants, name), tenants.map(() => 1))
  for (const tenant of tenants) {
    const target = next.tenancy.tenants.target(tenant)
    assert.deepEqual(await sql(target.url, `select schema_name from "${target.schema as string}".ran_in`), [{ schema_name: target.schema }])
  }
})

test('a tenant whose lifecycle lock is held elsewhere does not hold up its batch: the others are migrated, and it is once its lock is free', { timeout: 240_000 }, async (t) => {
  const { app, central } = await buildApp(t, { strategy: 'schema' })
  const tenants = await schemaTenants(app, 8)
  const busy = tenants[2] as Tenant
  const holder = new pg.Client({ connectionString: central.url })
  holder.on('error', () => {})
  await holder.connect()
  t.after(async () => { await holder.end().catch(() => {}) })
  // What a create, delete or move of the tenant holds meanwhile, on another instance.
  await holder.query('select pg_advisory_lock($1, $2)', [LockSpace.tenant, lockId(busy.key)])
  const { app: next } = await buildApp(t, { strategy: 'schema', tenantMigrations: withMarker }, () => {}, central)
  const started = await next.tenancy.rollouts.start({ concurrency: 1 })
  const running = next.tenancy.rollouts.run(started.id)
  running.catch(() => {})
  await until(async () => (await runs(next, tenants, MARKER)).filter((n) => n === 1).length === 7, { what: 'the seven free tenants are migrated' })
  assert.deepEqual(await runs(next, [busy], MARKER), [0])
  await holder.query('select pg_advisory_unlock($1, $2)', [LockSpace.tenant, lockId(busy.key)])
  const done = await running
  assert.equal(done.counts.done, 8)
  assert.deepEqual(await runs(next, tenants, MARKER), tenants.map(() => 1))
})
