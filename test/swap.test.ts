import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough, Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { moveRoutes } from './helpers/moves.js'
import { TEST_SYNC } from './helpers/tenant-schema.js'
import { sql } from './helpers/database.js'
import { configFor, run } from './helpers/cli.js'

async function exported (app: FastifyInstance, name: string): Promise<Buffer> {
  const out = new PassThrough()
  const chunks: Buffer[] = []
  out.on('data', (c: Buffer) => chunks.push(c))
  await app.tenancy.bundles.export(name, out)
  out.end()
  return Buffer.concat(chunks)
}

async function projects (app: FastifyInstance, tenant: Tenant, n: number, title: string): Promise<void> {
  await app.tenancy.run(tenant, async (scope) => { await scope.em.getConnection().execute(`insert into projects (title) select ? from generate_series(1, ${n})`, [title]) })
}

/** acme with 10 projects, restored beside itself as acme-restored, then 5 more projects written to acme (its bad day). */
async function world (t: import('node:test').TestContext): Promise<{ app: FastifyInstance, central: Awaited<ReturnType<typeof buildApp>>['central'], acme: Tenant, copy: Tenant }> {
  const { app, central } = await buildApp(t, { strategy: 'database', identification: ['header'], cache: { listen: false }, provisioning: { spares: 0 }, database: { acquireTimeoutMs: 2000 }, moves: { drainMs: 1000 }, sync: TEST_SYNC }, moveRoutes)
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.example.com'] })
  await projects(app, acme, 10, 'good')
  const copy = await app.tenancy.bundles.import(Readable.from(await exported(app, 'acme')), { as: 'acme-restored' })
  await projects(app, acme, 5, 'bad')
  return { app, central, acme, copy }
}

test('tenants:swap puts a restored copy in: the identifier and domains serve the copy\'s data, the old data is kept held under the copy\'s name; requests during the swap get 200 with one side whole, or 503 FST_TENANCY_MOVING', async (t) => {
  const { app, acme, copy } = await world(t)
  const compared = await app.tenancy.bundles.compare('acme', 'acme-restored')
  const byTable = new Map(compared.map((c) => [c.table, c]))
  assert.deepEqual([byTable.get('projects')?.a?.rows, byTable.get('projects')?.b?.rows, byTable.get('projects')?.equal], [15, 10, false])
  assert.equal(byTable.get('users')?.equal, true)

  // Four clients ask acme for its counts over and over while the swap runs.
  let swapped = false
  let going = true
  const seen: Array<{ status: number, projects?: number, code?: string, startedAfterSwap: boolean }> = []
  const client = async (): Promise<void> => {
    while (going) {
      const startedAfterSwap = swapped
      const res = await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
      const body = res.json()
      seen.push({ status: res.statusCode, projects: body.projects, code: body.code, startedAfterSwap })
    }
  }
  const clients = [client(), client(), client(), client()]
  while (seen.length < 8) await new Promise((resolve) => setImmediate(resolve))
  const result = await app.tenancy.swap('acme', 'acme-restored')
  swapped = true
  const after = seen.length
  while (seen.length < after + 8) await new Promise((resolve) => setImmediate(resolve))
  going = false
  await Promise.all(clients)

  assert.equal(result.serving.key, copy.key)
  assert.equal(result.serving.identifier, 'acme')
  assert.equal(result.kept.key, acme.key)
  assert.equal(result.kept.identifier, 'acme-restored')
  assert.ok(result.kept.heldAt != null, 'the kept data serves no one')
  assert.deepEqual((await app.tenancy.domains.list(result.serving)).map((d) => d.domain), ['acme.example.com'])
  assert.deepEqual(await app.tenancy.domains.list(result.kept), [])
  for (const s of seen) {
    if (s.status === 200) assert.ok(s.projects === 15 || s.projects === 10, `one side whole: ${JSON.stringify(s)}`)
    else assert.deepEqual([s.status, s.code], [503, 'FST_TENANCY_MOVING'])
  }
  assert.ok(seen.filter((s) => s.startedAfterSwap).every((s) => s.status === 200 && s.projects === 10), 'after the swap, acme is the copy')
  // The kept data is untouched, and still reachable for a look or a later delete.
  const [kept] = await app.tenancy.run(result.kept, async (scope) => await scope.em.getConnection().execute('select count(*)::int as n from projects'))
  assert.equal(kept?.n, 15)
  const held = await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme-restored' } })
  assert.deepEqual([held.statusCode, held.json().code], [503, 'FST_TENANCY_MOVING'])
  await app.tenancy.delete(result.kept)
  assert.equal((await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })).json().projects, 10)

  await assert.rejects(app.tenancy.swap('acme', 'acme'), { code: 'FST_TENANCY_INVALID_SWAP', message: /same tenant/ })
  await assert.rejects(app.tenancy.swap('acme', 'nobody'), { code: 'FST_TENANCY_TENANT_NOT_FOUND' })
})

test('a swap cut short after the hold leaves both tenants unchanged and held (503 FST_TENANCY_MOVING, never the wrong data); tenants:swap again finishes it, and tenants:compare prints the tables', async (t) => {
  const { app, central, acme, copy } = await world(t)
  const config = await configFor(central)
  const compare = await run(['tenants:compare', 'acme', 'acme-restored', '-c', config])
  assert.equal(compare.code, 1, compare.stderr)
  assert.match(compare.stdout, /^projects\s+15\s+10\s+[0-9a-f]{32}\s+[0-9a-f]{32}\s+NO$/m)
  // What a process killed between the hold and the swap's transaction leaves.
  await sql(central.url, `update ${'tenancy'}.tenants set held_at = now() where key in ($1, $2)`, [acme.key, copy.key])
  app.tenancy.invalidate()
  const res = await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  assert.deepEqual([res.statusCode, res.json().code], [503, 'FST_TENANCY_MOVING'])
  assert.equal((await app.tenancy.tenants.find('acme'))?.key, acme.key, 'nothing swapped yet')
  const swap = await run(['tenants:swap', 'acme', 'acme-restored', '-c', config])
  assert.equal(swap.code, 0, swap.stderr)
  assert.match(swap.stdout, /^Swapped: acme is now .+ \(the copy's data\); the former data is kept as acme-restored/)
  app.tenancy.invalidate()
  const served = await app.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  assert.deepEqual([served.statusCode, served.json().projects], [200, 10])
  // The list tells the kept former data from a live tenant.
  const listed = JSON.parse((await run(['tenants:list', '--json', '-c', config])).stdout) as Array<{ identifier: string, status: string, held: boolean }>
  assert.deepEqual(listed.map((r) => [r.identifier, r.status, r.held]).sort(), [['acme', 'active', false], ['acme-restored', 'active', true]])
  assert.match((await run(['tenants:list', '-c', config])).stdout, /\nacme-restored\s+\S.*\s+active, held\s/)
  const refused = await run(['tenants:swap', 'acme', 'acme', '-c', config])
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, /FST_TENANCY_INVALID_SWAP|cannot be swapped/)
})
