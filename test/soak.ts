// npm run soak: strategy `shared` under a hostile tenant, 100,000 requests
// over 200 tenants through PgBouncer in transaction mode (test/helpers/hostile-mix.ts).
// Against DATABASE_URL, or a throwaway embedded PostgreSQL. Prints its counts;
// exits 1 when a tenant saw, wrote or lost what it must not, or got a 5xx.
// Not part of npm test (the suite runs the same mix at 10,000 requests).
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../server/demo/embedded-postgres.js'
import { HOSTILE_ITEMS, mixFailures, printMix, runHostileMix, type HostileItem } from './helpers/hostile-mix.js'

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]))
const requests = Number(args.get('requests') ?? 100_000)
const tenants = Number(args.get('tenants') ?? 200)
const items = (args.get('items')?.split(',') ?? [...HOSTILE_ITEMS]) as HostileItem[]
const json = args.has('json')

let url = process.env.DATABASE_URL ?? ''
let stop = async (): Promise<void> => {}
if (url === '') {
  const server = await startEmbeddedPostgres({ dataDir: join('.tmp', `soak-pg-${process.pid}`), persistent: false })
  url = server.url
  stop = server.stop
}
let code = 0
try {
  const counts = await runHostileMix({ serverUrl: url, requests, tenants, items, log: (line) => { process.stderr.write(line + '\n') } })
  process.stdout.write((json ? JSON.stringify(counts, null, 2) : printMix(counts)) + '\n')
  const failures = mixFailures(counts)
  if (failures.length > 0) {
    process.stdout.write(`FAILED: ${failures.join('; ')}\n`)
    code = 1
  }
} finally {
  await stop()
}
process.exit(code)
