import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { logicalServers, moveWorld, startWriter } from './helpers/moves.js'
import { sql } from './helpers/database.js'

let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

test('smoke: a tenant moves from host a to host b', async (t) => {
  const world = await moveWorld(t, servers, 1000)
  const writer = startWriter(world.app, world.tenant, 50, 200)
  const moved = await world.app.tenancy.move(world.tenant, { host: 'b' })
  const result = await writer.stop()
  console.log(moved, result.statuses, result.longestMs, result.failures)
  const counts = await world.other.inject({ url: '/counts', headers: { 'x-tenant': 'acme' } })
  console.log(counts.json(), servers.b.port)
})
