import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Tenant } from '../server/index.js'
import { planMoves } from '../server/moves/rebalance.js'
import { logicalServers, moveWorld, seedRows } from './helpers/moves.js'
import { configFor, run } from './helpers/cli.js'

let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

test('a plan makes the move that evens the hosts most, again while one still evens them; each tenant moves once', () => {
  const placed = [
    { key: '1', identifier: 'big', host: 'a', weight: 60 },
    { key: '2', identifier: 'mid', host: 'a', weight: 30 },
    { key: '3', identifier: 'small', host: 'a', weight: 10 },
    { key: '4', identifier: 'tiny', host: 'b', weight: 5 }
  ]
  const plan = planMoves(placed, ['a', 'b', 'c'], 'size')
  const gap = (k: 'before' | 'after'): number => Math.max(...plan.hosts.map((h) => h[k])) - Math.min(...plan.hosts.map((h) => h[k]))
  assert.equal(gap('before'), 100)
  assert.ok(gap('after') < gap('before') / 2, `evened: ${JSON.stringify(plan.hosts)}`)
  assert.equal(new Set(plan.moves.map((m) => m.key)).size, plan.moves.length)
  // Even hosts give no plan.
  assert.deepEqual(planMoves([{ key: '1', identifier: 'x', host: 'a', weight: 5 }, { key: '2', identifier: 'y', host: 'b', weight: 5 }], ['a', 'b'], 'size').moves, [])
})

test('tenants:rebalance --plan proposes moves that even two hosts out by database size, and --apply performs them one at a time', async (t) => {
  const world = await moveWorld(t, servers, 30_000)
  const small: Tenant[] = []
  for (const identifier of ['s1', 's2', 's3']) {
    const tenant = await world.app.tenancy.create({ identifier, databaseHost: 'a' })
    await seedRows(world.app.tenancy.tenants.target(tenant).url, 500)
    small.push(tenant)
  }
  const plan = await world.app.tenancy.rebalance.plan('size')
  const host = (name: string): { tenants: number, before: number, after: number } => plan.hosts.find((h) => h.host === name) as never
  assert.equal(host('a').tenants + host('b').tenants, 4)
  assert.equal(host('b').before, 0, 'everything starts on a')
  assert.ok(plan.moves.length > 0 && plan.moves.every((m) => m.from === 'a' && m.to === 'b'))
  assert.ok(Math.abs(host('a').after - host('b').after) < host('a').before - host('b').before, 'the plan evens the hosts')

  // The command's app as the world's: same hosts, and syncing's bookkeeping tables in its tenant migrations.
  const config = await configFor(world.central, `, sync: TEST_SYNC, database: ${JSON.stringify({ url: world.central.url, prefix: world.central.prefix, hosts: servers.hosts, defaultHost: 'a' })}`)
  const printed = await run(['tenants:rebalance', '--plan', '--json', '-c', config])
  assert.equal(printed.code, 0, printed.stderr)
  // Sizes move a little between two looks (equal small tenants may trade places): the same shape of plan.
  const printedMoves = JSON.parse(printed.stdout).moves as Array<{ from: string, to: string }>
  assert.equal(printedMoves.length, plan.moves.length)
  assert.ok(printedMoves.every((m) => m.from === 'a' && m.to === 'b'))

  const applied = await run(['tenants:rebalance', '--apply', '-c', config])
  assert.equal(applied.code, 0, applied.stderr)
  // The moves --apply planned (its table) are the moves it made.
  const planned = [...applied.stdout.matchAll(/^(\S+)\s+a\s+b\s+\d+$/gm)].map((m) => m[1])
  const moved = [...applied.stdout.matchAll(/^Moved (\S+): online move a -> b: done/gm)].map((m) => m[1])
  assert.ok(moved.length > 0)
  assert.deepEqual(moved, planned)
  for (const identifier of moved) {
    const tenant = await world.app.tenancy.tenants.find(identifier as string) as Tenant
    assert.equal(tenant.databaseHost, 'b')
    const res = await world.app.inject({ url: '/counts', headers: { 'x-tenant': tenant.identifier } })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().port, new URL(servers.hosts.b as string).port, 'served from host b')
  }
  const unmoved = [world.tenant, ...small].filter((x) => !moved.includes(x.identifier))
  for (const x of unmoved) assert.equal((await world.app.tenancy.tenants.find(x.key))?.databaseHost ?? 'a', 'a')
})
