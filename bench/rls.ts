import type { ChildProcess } from 'node:child_process'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import pg from 'pg'
import { tenancyPlugin } from '../server/index.js'
import { createAppRole } from '../server/database/shared/rls-policies.js'
import { migrateShared } from '../server/database/shared/shared-schema.js'
import { benchCentral } from './central.js'
import { pin, startServer, stopServer } from './server-process.js'
import { median, round, type BenchContext, type Figure } from './figures.js'
import { TenantMigrator } from '../server/database/tenant-migrator.js'
import { appMigrationSet } from '../server/database/migration-sets.js'
import { tenantMigrations, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const SERVER = new URL('./rls-server.ts', import.meta.url)

const ROUNDS = 10
const SECONDS = 2
const IN_FLIGHT = 32
const MANY = 100_000
const FEW = 10
const CREATES = 21
const APP_ROLE = 'fastify_tenancy_bench_app'
const APP_PASSWORD = 'bench-app'

/** The figure names this benchmark prints (for `--list`). */
export const rlsFigures = ['rls.tenants100000.ratio', 'rls.tenants100000.spread', 'rls.overhead.ratio', 'rls.overhead.spread', 'rls.overhead.bare.ratio', 'rls.create.ms'] as const

/** req/s with IN_FLIGHT requests in flight, each naming a tenant `t<n>` with n drawn from `count` tenants. */
async function load (port: number, count: number, seconds: number): Promise<number> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/projects`,
    connections: IN_FLIGHT,
    pipelining: 1,
    duration: seconds,
    requests: [{
      method: 'GET',
      path: '/projects',
      setupRequest: (request: any) => ({ ...request, headers: { ...request.headers, 'x-tenant': `t${Math.floor(Math.random() * count)}` } })
    }]
  } as unknown as autocannon.Options)
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`the server answered ${result.non2xx} non-2xx and ${result.errors} errors`)
  return result.requests.average
}

async function query (url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { await c.query(text) } finally { await c.end() }
}

/**
 * Strategy `shared`: requests over 100,000 tenants against 10 (each with
 * three rows), row-level security against the same route with the policies
 * off and an explicit WHERE (and against a plain MikroORM), and creating one
 * tenant. Comparisons alternate their order round by round.
 */
export async function rls (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const servers: ChildProcess[] = []
  try {
    // On the shared tables' database: createAppRole also takes TEMP there from PUBLIC, which the plugin checks.
    await createAppRole(central.url, APP_ROLE, APP_PASSWORD)
    const centralRole = decodeURIComponent(new URL(central.url).username)
    const migrator = new TenantMigrator([appMigrationSet(tenantMigrations)])
    await migrateShared({ centralUrl: central.url, schema: 'tenant_shared', centralRole, appRole: APP_ROLE }, migrator).finally(async () => { await migrator.close() })
    const appUrl = new URL(central.url)
    appUrl.username = APP_ROLE
    appUrl.password = APP_PASSWORD

    // rls.create.ms: the plugin's own create(), one tenant at a time.
    const app = Fastify({ logger: false })
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, strategy: 'shared', shared: { url: appUrl.toString() }, cache: { listen: false } })
    await app.tenancy.create({ identifier: 'warm' })
    const creates: number[] = []
    for (let i = 0; i < CREATES; i++) {
      const started = performance.now()
      await app.tenancy.create({ identifier: `new-${i}` })
      creates.push(performance.now() - started)
    }
    await app.close()
    ctx.log(`rls.create: median ${round(median(creates))} ms over ${CREATES}`)

    // 100,000 tenants with three rows each, written in bulk (the central role crosses tenants).
    ctx.log('rls: writing 100,000 tenants and 300,000 rows…')
    await query(central.url, `
      insert into tenancy.tenants (key, identifier, resource_key, name, status, database_host)
      select gen_random_uuid(), 't' || i, gen_random_uuid(), 'Tenant ' || i, 'active', 'default' from generate_series(0, ${MANY - 1}) i;
      insert into tenant_shared.projects (tenant_key, title)
      select t.key, t.identifier || ':' || j from tenancy.tenants t, generate_series(1, 3) j where t.identifier ~ '^t[0-9]+$';
      create schema tenant_plain;
      create table tenant_plain.projects (like tenant_shared.projects including all);
      insert into tenant_plain.projects select * from tenant_shared.projects;
      grant usage on schema tenant_plain to ${APP_ROLE};
      grant select on all tables in schema tenant_plain to ${APP_ROLE};`)
    // Vacuumed now, so autovacuum has nothing left to do on them while the rounds run.
    await query(central.url, 'vacuum (analyze) tenancy.tenants, tenant_shared.projects, tenant_plain.projects')

    pin(process.pid, 1)
    ctx.log('rls: starting the servers (every tenant into the cache once)…')
    // Three servers, each with every tenant in its cache: one for 100,000 against 10 tenants; one for
    // policies on against off, the same route on the same server with row-level security turned off and
    // on between loads (the ORM filter's explicit WHERE stays); and one with no statement prefix at all,
    // a plain MikroORM on a copy of the table without RLS (the bare figure). Each serves its own load
    // only, so none carries more heap or history than the one it is compared with.
    const started = performance.now()
    const [scaled, secured, plain] = await Promise.all([
      startServer(SERVER, ['rls', central.url, central.prefix, appUrl.toString(), String(MANY)]),
      startServer(SERVER, ['rls', central.url, central.prefix, appUrl.toString(), String(MANY)]),
      startServer(SERVER, ['plain', central.url, central.prefix, appUrl.toString(), String(MANY)])
    ])
    servers.push(scaled.child, secured.child, plain.child)
    ctx.log(`rls: servers ready in ${Math.round((performance.now() - started) / 1000)} s`)
    const policies = async (on: boolean): Promise<void> => {
      await query(central.url, on
        ? 'alter table tenant_shared.projects enable row level security, force row level security'
        : 'alter table tenant_shared.projects no force row level security, disable row level security')
    }
    // Every server warm (JIT, pools, PostgreSQL's caches) before anything counts.
    for (let i = 0; i < 2; i++) {
      await load(scaled.port, MANY, 2)
      await load(scaled.port, FEW, 2)
      await policies(false)
      await load(secured.port, FEW, 2)
      await policies(true)
      await load(secured.port, FEW, 2)
      await load(plain.port, FEW, 2)
    }

    const manyRatios: number[] = []
    const overheadRatios: number[] = []
    const bareRatios: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const few = await load(scaled.port, FEW, SECONDS)
      const many = await load(scaled.port, MANY, SECONDS)
      // Off then on, then on then off: neither side always runs second.
      const order = i % 2 === 0 ? [false, true] : [true, false]
      const rates = new Map<boolean, number>()
      for (const on of order) {
        await policies(on)
        rates.set(on, await load(secured.port, FEW, SECONDS))
      }
      const bare = await load(plain.port, FEW, SECONDS)
      const [off, on] = [rates.get(false) as number, rates.get(true) as number]
      manyRatios.push(many / few)
      overheadRatios.push(on / off)
      bareRatios.push(on / bare)
      ctx.log(`rls round ${i + 1}: 10 tenants ${Math.round(few)} req/s, 100,000 tenants ${Math.round(many)} req/s; policies off ${Math.round(off)} req/s, on ${Math.round(on)} req/s; bare MikroORM ${Math.round(bare)} req/s`)
    }
    await policies(true)
    return [
      { name: 'rls.tenants100000.ratio', value: round(median(manyRatios)), unit: 'ratio', note: `req/s over 100,000 tenants ÷ over 10, ${IN_FLIGHT} in flight, median of ${ROUNDS} alternating rounds; target ≥ 0.80` },
      { name: 'rls.tenants100000.spread', value: round(Math.max(...manyRatios) - Math.min(...manyRatios)), unit: 'ratio', note: 'max − min of the per-round ratios' },
      { name: 'rls.overhead.ratio', value: round(median(overheadRatios)), unit: 'ratio', note: 'row-level security on ÷ off (the ORM filter\'s explicit WHERE either way), same route, same server; target ≥ 0.95' },
      { name: 'rls.overhead.spread', value: round(Math.max(...overheadRatios) - Math.min(...overheadRatios)), unit: 'ratio', note: 'max − min of the per-round ratios' },
      { name: 'rls.overhead.bare.ratio', value: round(median(bareRatios)), unit: 'ratio', note: 'RLS on ÷ a plain MikroORM on a copy of the table without RLS and with no statement prefix: all strategy shared costs' },
      { name: 'rls.create.ms', value: round(median(creates)), unit: 'ms', note: `provisioning one tenant in strategy shared, median of ${CREATES}; target ≤ 5` }
    ]
  } finally {
    for (const child of servers) await stopServer(child)
    await central.drop()
  }
}
