// Fleet rollouts (#21): a no-op migrate over 1,000 up-to-date tenant
// databases, and one new migration over 1,000 tenant databases and over
// 10,000 schema tenants, each against a bare script doing the same DDL at the
// same concurrency, alternating A B in one run.
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { tenancyPlugin, type TenancyOptions } from '../server/index.js'
import { TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'
import { MARKER, withMarker } from '../test/helpers/rollouts.js'
import { mapLimit } from '../server/support/map-limit.js'
import { benchCentral } from './central.js'
import { insertTenants } from './scale.js'
import { median, round, type BenchContext, type Figure } from './figures.js'

export const fleetFigures = ['fleet.noop1000.s', 'fleet.migrate1000.ratio', 'fleet.schema10000.ratio'] as const

const ROUNDS = 3
/** Smaller fleets for a quick look (FLEET_DATABASES=200 FLEET_SCHEMAS=2000); the figures are named for the defaults and the notes say the size run. */
const DATABASES = Number(process.env.FLEET_DATABASES ?? 1000)
const SCHEMAS = Number(process.env.FLEET_SCHEMAS ?? 10_000)
const CONCURRENCY = 8
const DDL = 'create table rollout_marker (id integer primary key)'

async function sql (url: string, text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { return (await c.query(text, params)).rows } finally { await c.end() }
}

function urlOf (serverUrl: string, database: string): string {
  const u = new URL(serverUrl)
  u.pathname = '/' + database
  return u.toString()
}

async function appOn (central: { url: string, prefix: string }, options: Partial<TenancyOptions>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    database: { url: central.url, prefix: central.prefix },
    cache: { listen: false },
    provisioning: { spares: 0 },
    ...options
  })
  await app.ready()
  return app
}

/** Every tenant recorded centrally as having run `names` (what a migrate or provisioning writes). */
async function recordStates (centralUrl: string, names: string[]): Promise<void> {
  await sql(centralUrl, `insert into tenancy.tenant_migration_states (tenant_key, executed) select key, $1::text[] from tenancy.tenants
    on conflict (tenant_key) do update set executed = excluded.executed, error = null, checked_at = now()`, [names])
}

/** Our rollout of the new migration; returns seconds. */
async function ours (app: FastifyInstance, expected: number): Promise<number> {
  const t0 = performance.now()
  const r = await app.tenancy.rollouts.start({ concurrency: CONCURRENCY })
  const done = await app.tenancy.rollouts.run(r.id)
  const s = (performance.now() - t0) / 1000
  if (done.counts.done !== expected || done.status !== 'done') throw new Error(`the rollout did not migrate every tenant: ${JSON.stringify(done.counts)}`)
  return s
}

/** The 1,000-database figures. */
async function databases (ctx: BenchContext): Promise<Figure[]> {
  const MANY = DATABASES
  const central = await benchCentral(ctx.serverUrl)
  try {
    const before = await appOn(central, {})
    const first = await before.tenancy.create({ identifier: 'first' })
    const firstDb = before.tenancy.tenants.databaseName(first)
    const names = (await before.tenancy.migrationStatus(first)).executed
    ctx.log(`fleet: cloning ${MANY} tenant databases…`)
    const keys = Array.from({ length: MANY }, () => uuidv7())
    await mapLimit(keys, 8, async (key) => { await sql(ctx.serverUrl, `create database "${central.prefix}${key.replaceAll('-', '')}" template "${firstDb}"`) })
    await insertTenants(central.url, keys, 0)
    await recordStates(central.url, names)
    const dbs = [firstDb, ...keys.map((k) => central.prefix + k.replaceAll('-', ''))]

    // A no-op: every tenant is up to date by the central record.
    const noops: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now()
      const r = await before.tenancy.rollouts.start({ concurrency: CONCURRENCY })
      const done = await before.tenancy.rollouts.run(r.id)
      noops.push((performance.now() - t0) / 1000)
      if (done.counts.skipped !== MANY + 1) throw new Error(`the no-op rollout ran tenants: ${JSON.stringify(done.counts)}`)
    }
    await before.close()
    ctx.log(`fleet: no-op over ${MANY + 1} up-to-date tenants: ${noops.map((s) => round(s, 3)).join(', ')} s`)

    const next = await appOn(central, { tenantMigrations: withMarker })
    const undo = async (): Promise<void> => {
      await mapLimit(dbs, CONCURRENCY, async (db) => {
        const c = new pg.Client({ connectionString: urlOf(ctx.serverUrl, db) })
        await c.connect()
        // Two statements: a text of several commands takes no parameters.
        try { await c.query('drop table if exists rollout_marker'); await c.query('delete from fastify_tenancy_migrations where name = $1', [MARKER]) } finally { await c.end() }
      })
      await recordStates(central.url, names)
    }
    const bare = async (): Promise<number> => {
      const t0 = performance.now()
      await mapLimit(dbs, CONCURRENCY, async (db) => {
        const c = new pg.Client({ connectionString: urlOf(ctx.serverUrl, db) })
        await c.connect()
        try { await c.query(DDL) } finally { await c.end() }
      })
      return (performance.now() - t0) / 1000
    }
    const ratios = await alternate(ctx, `${MANY + 1} databases`, bare, async () => await ours(next, MANY + 1), undo, async () => { await next.close() })
    return [
      { name: 'fleet.noop1000.s', value: round(median(noops), 3), unit: 's', note: `start + run of a migrate over ${MANY + 1} up-to-date tenant databases, median of ${ROUNDS}; target ≤ 1` },
      { name: 'fleet.migrate1000.ratio', value: round(median(ratios)), unit: 'ratio', note: `bare pg script ÷ our rollout, one new migration over ${MANY + 1} databases at concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating rounds; target ≥ 0.7` }
    ]
  } finally {
    await central.drop()
  }
}

/** The 10,000-schema figure. */
async function schemas (ctx: BenchContext): Promise<Figure[]> {
  const MANY = SCHEMAS
  const central = await benchCentral(ctx.serverUrl)
  try {
    const before = await appOn(central, { strategy: 'schema' })
    const first = await before.tenancy.create({ identifier: 'first' })
    const firstSchema = before.tenancy.tenants.databaseName(first)
    const hostUrl = before.tenancy.tenants.target(first).url
    const names = (await before.tenancy.migrationStatus(first)).executed
    await before.close()
    ctx.log(`fleet: making ${MANY} tenant schemas…`)
    const keys = Array.from({ length: MANY }, () => uuidv7())
    for (let at = 0; at < MANY; at += 500) {
      const chunk = keys.slice(at, at + 500).map((k) => central.prefix + k.replaceAll('-', ''))
      await sql(hostUrl, chunk.map((n) => `create schema "${n}"; create table "${n}".fastify_tenancy_migrations (like "${firstSchema}".fastify_tenancy_migrations including all); insert into "${n}".fastify_tenancy_migrations select * from "${firstSchema}".fastify_tenancy_migrations;`).join('\n'))
    }
    await insertTenants(central.url, keys, 0)
    await recordStates(central.url, names)
    const all = [firstSchema, ...keys.map((k) => central.prefix + k.replaceAll('-', ''))]
    const next = await appOn(central, { strategy: 'schema', tenantMigrations: withMarker })
    const undo = async (): Promise<void> => {
      for (let at = 0; at < all.length; at += 500) {
        await sql(hostUrl, all.slice(at, at + 500).map((n) => `drop table if exists "${n}".rollout_marker; delete from "${n}".fastify_tenancy_migrations where name = '${MARKER}';`).join('\n'))
      }
      await recordStates(central.url, names)
    }
    // The bare script: CONCURRENCY connections to the one database, the same DDL in each schema.
    const bare = async (): Promise<number> => {
      const t0 = performance.now()
      const pool = new pg.Pool({ connectionString: hostUrl, max: CONCURRENCY })
      try {
        await mapLimit(all, CONCURRENCY, async (n) => { await pool.query(`create table "${n}".rollout_marker (id integer primary key)`) })
      } finally {
        await pool.end()
      }
      return (performance.now() - t0) / 1000
    }
    const ratios = await alternate(ctx, `${MANY + 1} schemas`, bare, async () => await ours(next, MANY + 1), undo, async () => { await next.close() })
    return [{ name: 'fleet.schema10000.ratio', value: round(median(ratios)), unit: 'ratio', note: `bare pg script ÷ our rollout, one new migration over ${MANY + 1} schema tenants on one host at concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating rounds; target ≥ 0.7` }]
  } finally {
    await central.drop()
  }
}

export async function fleet (ctx: BenchContext): Promise<Figure[]> {
  return [...DATABASES > 0 ? await databases(ctx) : [], ...SCHEMAS > 0 ? await schemas(ctx) : []]
}

/** ROUNDS alternating runs of the bare script and of ours, each undone after; the per-round ratios (bare ÷ ours). */
async function alternate (
  ctx: BenchContext, what: string, bare: () => Promise<number>, ours: () => Promise<number>, undo: () => Promise<void>, close: () => Promise<void>
): Promise<number[]> {
  const ratios: number[] = []
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const b = await bare()
      await undo()
      const o = await ours()
      await undo()
      ratios.push(b / o)
      ctx.log(`fleet: migrate over ${what}, round ${i + 1}: bare ${round(b, 2)} s, ours ${round(o, 2)} s`)
    }
  } finally {
    await close()
  }
  return ratios
}
