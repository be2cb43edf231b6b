import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { startEmbeddedPostgres, type EmbeddedServer } from '../../server/demo/embedded-postgres.js'
import type { Tenant, TenancyOptions } from '../../server/index.js'
import { buildApp } from './app.js'
import { dropDatabases, freshCentral, sql, urlFor, type CentralDatabase } from './database.js'
import { TEST_SYNC } from './tenant-schema.js'

/** Two PostgreSQL servers that can replicate logically (wal_level = logical), named a and b, for a test file. */
export async function logicalServers (): Promise<{ a: EmbeddedServer, b: EmbeddedServer, hosts: Record<string, string>, stop: () => Promise<void> }> {
  // synchronous_commit off as some operators run it: a commit is answered before its WAL is written, and a move must still lose none.
  const settings = { wal_level: 'logical', max_wal_senders: 20, max_replication_slots: 20, max_logical_replication_workers: 8, synchronous_commit: 'off' }
  const [a, b] = await Promise.all(['a', 'b'].map(async (name) => await startEmbeddedPostgres({ dataDir: join('.tmp', `move-${name}-${process.pid}`), settings })))
  return {
    a: a as EmbeddedServer,
    b: b as EmbeddedServer,
    hosts: { a: (a as EmbeddedServer).url, b: (b as EmbeddedServer).url },
    stop: async () => { await Promise.all([a?.stop(), b?.stop()]) }
  }
}

/** A tenant's routes: add a project, rename a user, read a project and the counts. */
export function moveRoutes (app: FastifyInstance): void {
  app.post<{ Body: { title: string } }>('/projects', async (request) => {
    const rows = await request.tenantEm.getConnection().execute('insert into projects (title) values (?) returning id', [request.body.title])
    return { id: Number(rows[0]?.id) }
  })
  app.put<{ Params: { id: string }, Body: { name: string } }>('/users/:id', async (request) => {
    const rows = await request.tenantEm.getConnection().execute('update users set name = ?, updated_at = now() where id = ? returning id', [request.body.name, Number(request.params.id)])
    return { updated: rows.length }
  })
  app.get('/counts', async (request) => {
    const rows = await request.tenantEm.getConnection().execute('select (select count(*) from users)::int as users, (select count(*) from projects)::int as projects, (select count(*) from fastify_tenancy_sync_outbox)::int as outbox, current_setting(\'port\') as port')
    return rows[0]
  })
}

export interface MoveWorld {
  app: FastifyInstance
  /** A second instance on the same central database, listening for changes. */
  other: FastifyInstance
  central: CentralDatabase
  tenant: Tenant
  hosts: Record<string, string>
  strategy: 'database' | 'schema'
}

/**
 * A central database on server a, two app instances, and a tenant on host a
 * with `rows` rows in users, projects and the sync outbox (1 : 3 : 1). With
 * strategy schema each server gets a database of its own for the tenants'
 * schemas, and the hosts are those databases.
 */
export async function moveWorld (
  t: TestContext, servers: { a: EmbeddedServer, hosts: Record<string, string> }, rows: number, options: Partial<TenancyOptions> = {}
): Promise<MoveWorld> {
  const central = await freshCentral(null, servers.a.url)
  const strategy = options.strategy === 'schema' ? 'schema' : 'database'
  const hosts = strategy === 'database'
    ? servers.hosts
    : Object.fromEntries(await Promise.all(Object.entries(servers.hosts).map(async ([host, url]) => {
      await sql(url, `create database "${central.prefix}schemas"`)
      return [host, urlFor(`${central.prefix}schemas`, url)]
    })))
  const base = { identification: ['header' as const], database: { hosts, defaultHost: 'a', acquireTimeoutMs: 3000 }, provisioning: { spares: 0 }, moves: { drainMs: 1000 }, sync: TEST_SYNC, ...options }
  const { app } = await buildApp(t, base, moveRoutes, central)
  const { app: other } = await buildApp(t, base, moveRoutes, central)
  t.after(async () => {
    await other.close()
    await app.close()
    await central.drop()
    for (const server of Object.values(servers.hosts)) await dropDatabases(server, central.name, central.prefix)
  })
  const tenant = await app.tenancy.create({ identifier: 'acme', databaseHost: 'a' })
  await seedRows(tenantUrl(app, tenant, hosts, 'a'), rows)
  return { app, other, central, tenant, hosts, strategy }
}

/** A URL that reaches the tenant's tables on `host` by their bare names (a schema tenant's schema first on the search path). */
export function tenantUrl (app: FastifyInstance, tenant: Tenant, hosts: Record<string, string>, host: string): string {
  const target = app.tenancy.tenants.target({ ...tenant, databaseHost: host })
  const url = new URL(target.schema === null ? urlFor(target.name, hosts[host]) : hosts[host] as string)
  if (target.schema !== null) url.searchParams.set('options', `-c search_path="${target.schema}"`)
  return url.toString()
}

/** Fills a tenant database: users, projects and outbox rows in the ratio 1 : 3 : 1. */
export async function seedRows (url: string, rows: number): Promise<void> {
  const users = Math.floor(rows / 5)
  const outbox = Math.floor(rows / 5)
  const projects = rows - users - outbox
  await sql(url, `insert into users (global_id, name, email, password) select 'g' || g, 'user ' || g, 'u' || g || '@example.com', 'x' from generate_series(1, ${users}) g`)
  await sql(url, `insert into projects (title) select 'seed ' || g from generate_series(1, ${projects}) g`)
  await sql(url, `insert into fastify_tenancy_sync_outbox (change) select jsonb_build_object('n', g) from generate_series(1, ${outbox}) g`)
}

export interface WriterResult {
  /** Project titles whose insert answered 200, with the id it got. */
  inserted: Map<string, number>
  /** The last name each user was given with a 200. */
  names: Map<number, string>
  statuses: Map<number, number>
  /** The longest any request took, in ms. */
  longestMs: number
  /** Requests that did not get 200, as `status code`. */
  failures: string[]
}

/**
 * Inserts a project and renames a user `perSecond` times a second, alternately, through the app, until stopped.
 * `answered()` counts the requests answered so far (any status).
 */
export function startWriter (app: FastifyInstance, tenant: Tenant, perSecond: number, users: number, tag = 'w'): { answered: () => number, stop: () => Promise<WriterResult> } {
  const result: WriterResult = { inserted: new Map(), names: new Map(), statuses: new Map(), longestMs: 0, failures: [] }
  let running = true
  let n = 0
  const inFlight = new Set<Promise<void>>()
  const one = async (i: number): Promise<void> => {
    const started = performance.now()
    const insert = i % 2 === 0
    const title = `${tag}-${i}`
    const user = 1 + (i * 7919) % users
    const name = `${tag}-name-${i}`
    const res = insert
      ? await app.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': tenant.identifier }, payload: { title } })
      : await app.inject({ method: 'PUT', url: `/users/${user}`, headers: { 'x-tenant': tenant.identifier }, payload: { name } })
    result.longestMs = Math.max(result.longestMs, performance.now() - started)
    result.statuses.set(res.statusCode, (result.statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode !== 200) { result.failures.push(`${res.statusCode} ${String(res.json().code)}`); return }
    if (insert) result.inserted.set(title, res.json().id)
    // Renames of one user are sent one at a time (below), so the last 200 is the name it has.
    else result.names.set(user, name)
  }
  const loop = (async () => {
    const every = 1000 / perSecond
    const start = performance.now()
    while (running) {
      const i = n++
      const p = one(i).finally(() => inFlight.delete(p))
      inFlight.add(p)
      // Renames wait for the one before, so their order is the order they were sent.
      if (i % 2 === 1) await p
      const next = start + n * every
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())))
    }
  })()
  return {
    answered: () => [...result.statuses.values()].reduce((a, b) => a + b, 0),
    stop: async () => {
      running = false
      await loop
      await Promise.all([...inFlight])
      return result
    }
  }
}

/** Runs test/fixtures/moving-process.ts: a process that moves the tenant and kills itself after step `killAt` (or finishes). */
export async function moveInChild (
  world: Pick<MoveWorld, 'central' | 'tenant' | 'hosts'> & { strategy?: 'database' | 'schema' | 'shared', sharedUrl?: string },
  host: string, killAt: string | null, mode: 'online' | 'offline' = 'online', operation: 'move' | 'isolate' | 'consolidate' = 'move'
): Promise<{ code: number | null, signal: NodeJS.Signals | null, steps: string[] }> {
  const args = [world.central.url, world.central.prefix, JSON.stringify(world.hosts), world.tenant.key, host, mode, world.strategy ?? 'database', operation, world.sharedUrl ?? '']
  const child = fork(join('test', 'fixtures', 'moving-process.ts'), args, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...(killAt === null ? {} : { KILL_AT: killAt }) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  const steps: string[] = []
  child.on('message', (step) => { steps.push(String(step)) })
  return await new Promise((resolve) => { child.on('exit', (code, signal) => { resolve({ code, signal, steps }) }) })
}

/**
 * What the writers' successful requests should have left at `url`: every
 * inserted title once, with its id; every renamed user's last name (unless
 * `users` is false). A request that got no 200 wrote nothing (it waited for
 * a hold that a crash left, or its connection was ended before it committed).
 */
export async function assertWritten (url: string, written: WriterResult[], users = true): Promise<void> {
  const inserted = new Map<string, number>()
  const names = new Map<number, string>()
  for (const w of written) {
    for (const [title, id] of w.inserted) inserted.set(title, id)
    for (const [user, name] of w.names) names.set(user, name)
  }
  const rows = await sql<{ title: string, id: number }>(url, 'select title, id from projects where title not like \'seed %\'')
  const found = new Map(rows.map((r) => [r.title, r.id]))
  assert.equal(rows.length, found.size, 'no title twice')
  assert.deepEqual([...found.entries()].sort(), [...inserted.entries()].sort(), 'the projects are exactly the ones the writer got 200 for')
  if (!users) return
  const renamed = await sql<{ id: number, name: string }>(url, 'select id, name from users where id = any($1::int[])', [[...names.keys()]])
  assert.deepEqual(new Map(renamed.map((u) => [u.id, u.name])), names, 'each renamed user has the last name it got')
}
