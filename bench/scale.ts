import type { ChildProcess } from 'node:child_process'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { tenancyPlugin } from '../server/index.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'
import { mapLimit } from '../server/support/map-limit.js'
import { LoginSocket } from '../server/database/login-socket.js'
import { benchCentral } from './central.js'
import { connectionSampler } from '../test/helpers/tenants.js'
import { pin, startServer, stopServer } from './server-process.js'
import { median, round, type BenchContext, type Figure } from './figures.js'

const SERVER = new URL('./scale-server.ts', import.meta.url)

const ROUNDS = 5
const SECONDS = 3
const IN_FLIGHT = 32
const FEW = 10
const REALISTIC_ROUNDS = 6
const REALISTIC_PROCESSES = 2

export const connectionsFigures = ['connections.tenants1000.ratio', 'connections.tenants1000.spread', 'connections.tenants1000.peak', 'connections.tenants1000.ceiling', 'connections.tenants1000.ofCeiling',
  'connections.login.ms', 'connections.login.plain.ms', 'connections.login.ratio'] as const
export const schemaFigures = ['schema.tenants10000.ratio', 'schema.tenants10000.spread'] as const
export const realisticFigures = ['overhead.realistic.ratio', 'overhead.realistic.spread'] as const

/** req/s with IN_FLIGHT requests in flight, each naming a tenant `t<n>` drawn from `count` tenants. Every answer must be 200. */
async function load (port: number, path: string, count: number, seconds: number): Promise<number> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    connections: IN_FLIGHT,
    pipelining: 1,
    duration: seconds,
    requests: [{ method: 'GET', path, setupRequest: (request: any) => ({ ...request, headers: { ...request.headers, 'x-tenant': `t${Math.floor(Math.random() * count)}` } }) }]
  } as unknown as autocannon.Options)
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`the server answered ${result.non2xx} non-2xx and ${result.errors} errors`)
  return result.requests.average
}

async function sql (url: string, text: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { return (await c.query(text, params)).rows } finally { await c.end() }
}

/** Tenant rows `t<i>` (keys given), written in bulk: the benchmark measures serving them, not making them. */
export async function insertTenants (centralUrl: string, keys: string[], from: number): Promise<void> {
  for (let at = 0; at < keys.length; at += 1000) {
    const chunk = keys.slice(at, at + 1000)
    await sql(centralUrl, `insert into tenancy.tenants (key, identifier, resource_key, name, status, database_host)
      select k::uuid, 't' || (i - 1 + $2::int), gen_random_uuid(), 'Tenant ' || (i - 1 + $2::int), 'active', 'default' from unnest($1::text[]) with ordinality as u(k, i)`, [chunk, from + at])
  }
}

/** The bare clients' application_name: the connection sampler leaves them out of the server's peak. */
const BARE_APPLICATION = 'bench: bare new connections'

/**
 * The most any server could answer with every request on a database whose
 * connection is not open: `parallel` clients (the budget) each connecting to a
 * random one of `databases`, reading its projects and disconnecting, for
 * `seconds`. No HTTP, no ORM: PostgreSQL's own cost of a new backend.
 */
async function newConnectionRate (serverUrl: string, databases: string[], parallel: number, seconds: number): Promise<number> {
  let done = 0
  const until = performance.now() + seconds * 1000
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (performance.now() < until) {
      const url = new URL(serverUrl)
      url.pathname = '/' + (databases[Math.floor(Math.random() * databases.length)] as string)
      const c = new pg.Client({ connectionString: url.toString(), application_name: BARE_APPLICATION })
      await c.connect()
      await c.query('select title from projects')
      await c.end()
      done++
    }
  }))
  return done / seconds
}

/**
 * What the library's login (login-socket.ts: SCRAM answered with the
 * password's key derived once) is worth: the mean time to open a connection
 * to a random tenant database, log in and read once, through it and through
 * node-postgres's own login (PBKDF2 again on each), alternating, one at a time.
 */
async function loginTimes (serverUrl: string, databases: string[], rounds: number): Promise<{ ours: number, plain: number }> {
  const url = new URL(serverUrl)
  const password = decodeURIComponent(url.password)
  const permits = { take: async () => {}, give: () => {} }
  const once = async (ours: boolean): Promise<number> => {
    const started = performance.now()
    const c = new pg.Client({
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password,
      database: databases[Math.floor(Math.random() * databases.length)],
      ...(ours ? { stream: () => new LoginSocket(permits, password) } : {})
    })
    await c.connect()
    await c.query('select title from projects')
    await c.end()
    return performance.now() - started
  }
  let ours = 0
  let plain = 0
  for (let i = 0; i < rounds; i++) {
    ours += await once(true)
    plain += await once(false)
  }
  return { ours: ours / rounds, plain: plain / rounds }
}

/** Alternates FEW and MANY tenants on one server, ROUNDS times; returns the per-round ratios (and the FEW req/s). */
async function alternate (
  ctx: BenchContext, label: string, port: number, many: number, fewRates: number[] = [], between?: () => Promise<void>
): Promise<number[]> {
  await load(port, '/projects', many, 2)
  await load(port, '/projects', FEW, 2)
  const ratios: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const few = await load(port, '/projects', FEW, SECONDS)
    const lots = await load(port, '/projects', many, SECONDS)
    fewRates.push(few)
    ratios.push(lots / few)
    ctx.log(`${label} round ${i + 1}: ${FEW} tenants ${Math.round(few)} req/s, ${many} tenants ${Math.round(lots)} req/s, ratio ${round(lots / few)}`)
    await between?.()
  }
  return ratios
}

/** Strategy `database`: 32 requests in flight over 1,000 tenant databases under a budget of 20 connections, against 10 tenants. */
export async function connections (ctx: BenchContext): Promise<Figure[]> {
  const MANY = 1000
  const central = await benchCentral(ctx.serverUrl)
  let server: ChildProcess | null = null
  try {
    const app = Fastify({ logger: false })
    await app.register(tenancyPlugin, {
      ...TEST_TENANT_SCHEMA,
      database: { url: central.url, prefix: central.prefix },
      cache: { listen: false },
      provisioning: { spares: 0 }
    })
    const first = await app.tenancy.create({ identifier: 'first' })
    await app.tenancy.run(first, async (scope) => { scope.em.create(ProjectEntity, { title: 'one' }); await scope.em.flush() })
    const firstDb = app.tenancy.tenants.databaseName(first)
    await app.close()
    ctx.log(`connections: cloning ${MANY} tenant databases…`)
    const keys = Array.from({ length: MANY }, () => uuidv7())
    const started = performance.now()
    await mapLimit(keys, 8, async (key) => {
      await sql(ctx.serverUrl, `create database "${central.prefix}${key.replaceAll('-', '')}" template "${firstDb}"`)
    })
    await insertTenants(central.url, keys, 0)
    // Written out now: the checkpoint after a thousand new databases would otherwise land in the rounds.
    await sql(ctx.serverUrl, 'checkpoint')
    // Each database opened once, as on a server that has run a while: a first open reads its files from disk, for either side.
    await mapLimit(keys, 8, async (key) => {
      const url = new URL(ctx.serverUrl)
      url.pathname = `/${central.prefix}${key.replaceAll('-', '')}`
      await sql(url.toString(), 'select title from projects')
    })
    ctx.log(`connections: made in ${round((performance.now() - started) / 1000, 1)} s`)
    pin(process.pid, 1)
    const s = await startServer(SERVER, ['database', central.url, central.prefix, String(MANY)])
    server = s.child
    const peak = await connectionSampler(ctx.serverUrl, central.prefix, { ignoreApplication: BARE_APPLICATION })
    let ratios: number[] = []
    const fewRates: number[] = []
    // The bound this figure lives under, measured in each round right after
    // the server's (the server idle then), so a slow spell of the machine
    // weighs on both sides of a round alike.
    const databases = keys.map((k) => central.prefix + k.replaceAll('-', ''))
    const rates: number[] = []
    let sampled = 0
    try {
      ratios = await alternate(ctx, 'connections', s.port, MANY, fewRates, async () => {
        rates.push(await newConnectionRate(ctx.serverUrl, databases, 20, SECONDS))
        ctx.log(`connections: bare PostgreSQL, 20 clients each connecting to a random one of ${MANY} databases, one read, disconnect: ${Math.round(rates.at(-1) as number)} per s`)
      })
    } finally {
      sampled = await peak.stop()
      ctx.log(`connections: peak ${sampled} tenant connections (sampled every 10 ms); PostgreSQL's own background workers in those databases at once: up to ${peak.background()}`)
    }
    const ceiling = median(rates.map((rate, i) => rate / (fewRates[i] as number)))
    const login = await loginTimes(ctx.serverUrl, databases, 200)
    return [
      { name: 'connections.tenants1000.ratio', value: round(median(ratios)), unit: 'ratio', note: `req/s over 1,000 tenant databases ÷ over 10, ${IN_FLIGHT} in flight, budget 20, median of ${ROUNDS} alternating rounds; target ≥ 0.25` },
      { name: 'connections.tenants1000.spread', value: round(Math.max(...ratios) - Math.min(...ratios)), unit: 'ratio', note: 'max − min of the per-round ratios' },
      { name: 'connections.tenants1000.peak', value: sampled, unit: 'conns', note: 'client connections to tenant databases, pg_stat_activity sampled every 10 ms (autovacuum workers not counted); target ≤ 20' },
      { name: 'connections.tenants1000.ceiling', value: round(ceiling), unit: 'ratio', note: 'bare PostgreSQL new-connection rate (20 clients: connect to a random tenant database, one read, disconnect) ÷ the same round\'s 10-tenant req/s, median of the rounds: no server can pass this ratio when every request needs a new backend' },
      { name: 'connections.login.ms', value: round(login.ours, 2), unit: 'ms', note: 'open a connection to a random tenant database, log in (SCRAM, the key derived once per password) and read once, one at a time, mean of 200' },
      { name: 'connections.login.plain.ms', value: round(login.plain, 2), unit: 'ms', note: 'the same with node-postgres\'s own login (PBKDF2 on every connection), alternating with the above' },
      { name: 'connections.login.ratio', value: round(login.plain / login.ours), unit: 'ratio', note: 'connections.login.plain.ms ÷ connections.login.ms: what the library\'s login is worth per new connection' },
      { name: 'connections.tenants1000.ofCeiling', value: round(median(ratios) / ceiling), unit: 'ratio', note: 'connections.tenants1000.ratio ÷ connections.tenants1000.ceiling, same run: how much of what PostgreSQL allows the server reaches; target ≥ 0.8' }
    ]
  } finally {
    if (server !== null) await stopServer(server)
    await central.drop()
  }
}

/** Strategy `schema`: 32 requests in flight over 10,000 schema tenants on one host, against 10. */
export async function schemaTenants (ctx: BenchContext): Promise<Figure[]> {
  const MANY = 10_000
  const central = await benchCentral(ctx.serverUrl)
  let server: ChildProcess | null = null
  try {
    const app = Fastify({ logger: false })
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, strategy: 'schema', cache: { listen: false } })
    const first = await app.tenancy.create({ identifier: 'first' })
    const firstSchema = app.tenancy.tenants.databaseName(first)
    await app.close()
    ctx.log(`schema: making ${MANY} tenant schemas…`)
    const keys = Array.from({ length: MANY }, () => uuidv7())
    const started = performance.now()
    for (let at = 0; at < MANY; at += 500) {
      const names = keys.slice(at, at + 500).map((k) => central.prefix + k.replaceAll('-', ''))
      await sql(central.url, names.map((n) => `create schema "${n}"; create table "${n}".projects (like "${firstSchema}".projects including all); insert into "${n}".projects (title, created_at) values ('one', now());`).join('\n'))
    }
    await insertTenants(central.url, keys, 0)
    ctx.log(`schema: made in ${round((performance.now() - started) / 1000, 1)} s`)
    pin(process.pid, 1)
    const s = await startServer(SERVER, ['schema', central.url, central.prefix, String(MANY)])
    server = s.child
    const ratios = await alternate(ctx, 'schema', s.port, MANY)
    return [
      { name: 'schema.tenants10000.ratio', value: round(median(ratios)), unit: 'ratio', note: `req/s over 10,000 schema tenants ÷ over 10, ${IN_FLIGHT} in flight, one pool, median of ${ROUNDS} alternating rounds; target ≥ 0.80` },
      { name: 'schema.tenants10000.spread', value: round(Math.max(...ratios) - Math.min(...ratios)), unit: 'ratio', note: 'max − min of the per-round ratios' }
    ]
  } finally {
    if (server !== null) await stopServer(server)
    await central.drop()
  }
}

/**
 * A tenant route reading one row through request.tenantEm with the logger on
 * (to a discarded stream), against a plain Fastify + MikroORM app doing the
 * same read with RequestContext on the same database, alternating A B.
 */
export async function overheadRealistic (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const servers: ChildProcess[] = []
  try {
    const app = Fastify({ logger: false })
    await app.register(tenancyPlugin, {
      ...TEST_TENANT_SCHEMA,
      database: { url: central.url, prefix: central.prefix },
      cache: { listen: false },
      provisioning: { spares: 0 }
    })
    // Tenant t0, the only one: every request of both sides reads the same row of the same database.
    const tenant = await app.tenancy.create({ identifier: 't0' })
    await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: 'one' }); await scope.em.flush() })
    const url = new URL(central.url)
    url.pathname = '/' + app.tenancy.tenants.databaseName(tenant)
    await app.close()
    pin(process.pid, 1)
    // Two server processes a side: identical processes differ by up to 10% in
    // req/s here (memory layout, JIT), as much as the gap being measured, so
    // each side is the sum of two.
    const pairs: Array<{ plain: { port: number }, tenant: { port: number } }> = []
    for (let i = 0; i < REALISTIC_PROCESSES; i++) {
      const tenant = await startServer(SERVER, ['tenant-read', central.url, central.prefix])
      const plain = await startServer(SERVER, ['plain-read', central.url, central.prefix, url.toString()])
      servers.push(tenant.child, plain.child)
      pairs.push({ plain, tenant })
    }
    // Every server warm (JIT, pools, PostgreSQL's caches) before anything counts.
    for (let i = 0; i < 2; i++) {
      for (const pair of pairs) {
        await load(pair.plain.port, '/read', 1, 2)
        await load(pair.tenant.port, '/read', 1, 2)
      }
    }
    const ratios: number[] = []
    for (let i = 0; i < REALISTIC_ROUNDS; i++) {
      let plain = 0
      let tenanted = 0
      for (const [p, pair] of pairs.entries()) {
        // A B, then B A: neither side always runs right after the other.
        const plainFirst = (i + p) % 2 === 0
        const a = await load(plainFirst ? pair.plain.port : pair.tenant.port, '/read', 1, SECONDS)
        const b = await load(plainFirst ? pair.tenant.port : pair.plain.port, '/read', 1, SECONDS)
        plain += plainFirst ? a : b
        tenanted += plainFirst ? b : a
      }
      ratios.push(tenanted / plain)
      ctx.log(`overhead.realistic round ${i + 1}: plain ${Math.round(plain / pairs.length)} req/s, tenant ${Math.round(tenanted / pairs.length)} req/s (each the mean of ${pairs.length} processes), ratio ${round(tenanted / plain)}`)
    }
    return [
      { name: 'overhead.realistic.ratio', value: round(median(ratios)), unit: 'ratio', note: `tenant route (request.tenantEm, logger on) ÷ plain Fastify + MikroORM with RequestContext, one-row read, two processes a side, median of ${REALISTIC_ROUNDS} rounds in A B / B A order; target ≥ 0.95` },
      { name: 'overhead.realistic.spread', value: round(Math.max(...ratios) - Math.min(...ratios)), unit: 'ratio', note: 'max − min of the per-round ratios' }
    ]
  } finally {
    for (const child of servers) await stopServer(child)
    await central.drop()
  }
}
