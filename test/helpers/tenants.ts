import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { repeat } from './poll.js'
import { mapLimit } from '../../server/support/map-limit.js'
import type { Tenant } from '../../server/index.js'

/**
 * Makes `count` tenants named `<tag><i>`, `concurrency` at a time. Each new
 * database is a `CREATE DATABASE ... TEMPLATE` of the migrated template the
 * plugin keeps (strategy `database`), so hundreds take seconds, not minutes.
 */
export async function makeTenants (app: FastifyInstance, count: number, tag: string, concurrency = 8): Promise<Tenant[]> {
  return await mapLimit(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => await app.tenancy.create({ identifier: `${tag}${i}` }))
}

/**
 * Samples the number of client connections to databases whose names start
 * with `prefix` (the tenant databases of one test; its template excluded)
 * every 10 ms, from a connection of its own, and keeps the peak. PostgreSQL's
 * own workers there (autovacuum visits new databases) are not the app's:
 * their peak is kept apart (`background`). The benchmark uses it too.
 */
export async function connectionSampler (
  serverUrl: string, prefix: string, options: { ignoreApplication?: string } = {}
): Promise<{ peak: () => number, background: () => number, samples: () => number, stop: () => Promise<number> }> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  let peak = 0
  let background = 0
  let samples = 0
  const sampling = repeat(async () => {
    const { rows } = await client.query<{ n: number, others: number }>(`select count(*) filter (where backend_type = 'client backend')::int as n, count(*) filter (where backend_type <> 'client backend')::int as others
      from pg_stat_activity where starts_with(datname, $1) and datname <> $2 and application_name is distinct from $3`, [prefix, prefix + 'template', options.ignoreApplication ?? null])
    peak = Math.max(peak, rows[0]?.n ?? 0)
    background = Math.max(background, rows[0]?.others ?? 0)
    samples++
  }, { everyMs: 10 })
  return {
    peak: () => peak,
    background: () => background,
    samples: () => samples,
    stop: async () => {
      try {
        await sampling.stop()
      } finally {
        await client.end()
      }
      return peak
    }
  }
}
