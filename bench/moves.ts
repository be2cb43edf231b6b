import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { startEmbeddedPostgres } from '../server/demo/embedded-postgres.js'
import { benchCentral } from './central.js'
import { median, round, type BenchContext, type Figure } from './figures.js'
import { moveRoutes, seedRows } from '../test/helpers/moves.js'
import { TEST_SYNC, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const MOVES = 5
const ROWS = 100_000

export const moveFigures = ['move.hold.ms', 'move.rows100k.s'] as const

/**
 * Five moves of one tenant of 100,000 rows (users, projects, outbox) between
 * two servers with wal_level = logical, back and forth, while 8 clients write
 * and read it through the app without pause: the longest any of its requests
 * took during a move (the hold at the switch and the wait for in-flight work
 * included), and how long a whole move took.
 */
export async function moves (ctx: BenchContext): Promise<Figure[]> {
  const settings = { wal_level: 'logical', max_wal_senders: 20, max_replication_slots: 20 }
  const servers = await Promise.all(['a', 'b'].map(async (name) => await startEmbeddedPostgres({ dataDir: join('.tmp', `bench-move-${name}-${process.pid}`), settings })))
  const [a, b] = servers as [typeof servers[0], typeof servers[0]]
  const central = await benchCentral(a.url)
  let app: FastifyInstance | null = null
  try {
    app = Fastify({ logger: false })
    await app.register(tenancyPlugin, {
      ...TEST_TENANT_SCHEMA,
      database: { url: central.url, prefix: central.prefix, hosts: { a: a.url, b: b.url }, defaultHost: 'a' },
      identification: ['header'],
      provisioning: { spares: 0 },
      // Syncing's tenant outbox is one of the three tables moved.
      sync: TEST_SYNC
    })
    moveRoutes(app)
    await app.ready()
    const server = app
    const tenant = await app.tenancy.create({ identifier: 'big', databaseHost: 'a' })
    await seedRows(app.tenancy.tenants.target(tenant).url, ROWS)
    const holds: number[] = []
    const durations: number[] = []
    let host = 'a'
    for (let i = 0; i < MOVES; i++) {
      let longest = 0
      let running = true
      let n = 0
      const client = async (c: number): Promise<void> => {
        while (running) {
          const started = performance.now()
          const res = n++ % 2 === 0
            ? await server.inject({ method: 'POST', url: '/projects', headers: { 'x-tenant': 'big' }, payload: { title: `bench-${i}-${c}-${n}` } })
            : await server.inject({ url: '/counts', headers: { 'x-tenant': 'big' } })
          if (res.statusCode !== 200) throw new Error(`a request got ${res.statusCode}: ${res.body}`)
          longest = Math.max(longest, performance.now() - started)
        }
      }
      const load = Promise.all(Array.from({ length: 8 }, async (_, c) => { await client(c) }))
      host = host === 'a' ? 'b' : 'a'
      const started = performance.now()
      const at: Array<[string, number]> = []
      await app.tenancy.move(tenant, { host, onStep: (step) => { at.push([step, performance.now()]) } })
      durations.push((performance.now() - started) / 1000)
      // Where the hold's time went: each step from held to switched.
      const held = at.findIndex(([step]) => step === 'copied')
      ctx.log(`move ${i + 1} hold steps: ${at.slice(held + 1).map(([step, t], j) => `${step} ${round(t - (at[held + j]?.[1] ?? t), 0)} ms`).join(', ')}`)
      running = false
      await load
      holds.push(longest)
      ctx.log(`move ${i + 1}: ${round(durations.at(-1) as number, 1)} s, longest request ${round(longest, 0)} ms`)
    }
    return [
      { name: 'move.hold.ms', value: round(Math.max(...holds), 0), unit: 'ms', note: `longest request of the moving tenant over ${MOVES} moves under 8 clients; target ≤ 1000` },
      { name: 'move.rows100k.s', value: round(median(durations), 1), unit: 's', note: `median whole move of ${ROWS} rows (${durations.map((d) => round(d, 1)).join(', ')}); target ≤ 30` }
    ]
  } finally {
    await app?.close()
    await central.drop()
    await Promise.all([a.stop(), b.stop()])
  }
}
