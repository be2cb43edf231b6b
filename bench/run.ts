// npm run bench [-- --json] [prefix...]: runs the benchmarks whose figures
// start with one of the prefixes (all when none), on DATABASE_URL or a
// throwaway embedded PostgreSQL, and prints a table or one JSON object per figure.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startEmbeddedPostgres } from '../server/database/embedded-postgres.js'
import type { BenchContext, Figure } from './figures.js'
import { overhead } from './overhead.js'
import { migrate200, provision } from './provision.js'
import { rls } from './rls.js'
import { syncFanout } from './sync-fanout.js'

const BENCHMARKS: Array<{ prefix: string, run: (ctx: BenchContext) => Promise<Figure[]> }> = [
  { prefix: 'overhead', run: overhead },
  { prefix: 'provision', run: provision },
  { prefix: 'migrate200', run: migrate200 },
  { prefix: 'rls', run: rls },
  { prefix: 'sync', run: syncFanout }
]

const { values, positionals } = parseArgs({ options: { json: { type: 'boolean', default: false } }, allowPositionals: true })
const wanted = (name: string): boolean => positionals.length === 0 || positionals.some((p) => name.startsWith(p) || p.startsWith(name))
const chosen = BENCHMARKS.filter((b) => wanted(b.prefix))
if (chosen.length === 0) {
  console.error(`No benchmark matches ${positionals.join(', ')}; there are: ${BENCHMARKS.map((b) => b.prefix).join(', ')}.`)
  process.exit(2)
}
const log = (line: string): void => { (values.json ? console.error : console.log)(`# ${line}`) }

let serverUrl = process.env.DATABASE_URL ?? ''
let stop = async (): Promise<void> => {}
if (serverUrl === '') {
  const server = await startEmbeddedPostgres({ dataDir: join('.tmp', `bench-pg-${process.pid}`) })
  serverUrl = server.url
  stop = server.stop
}

const figures: Figure[] = []
let failed = false
try {
  for (const bench of chosen) {
    log(`running ${bench.prefix}…`)
    for (const figure of await bench.run({ serverUrl, log })) {
      if (positionals.length > 0 && !positionals.some((p) => figure.name.startsWith(p))) continue
      figures.push(figure)
      if (values.json) console.log(JSON.stringify({ name: figure.name, value: figure.value, unit: figure.unit }))
    }
  }
} catch (error) {
  failed = true
  console.error(`Benchmark failed: ${(error as Error).message}`)
} finally {
  await stop()
}
if (!values.json && figures.length > 0) {
  const width = Math.max(...figures.map((f) => f.name.length))
  console.log('')
  for (const f of figures) console.log(`${f.name.padEnd(width)}  ${String(f.value).padStart(10)} ${f.unit.padEnd(6)} ${f.note ?? ''}`)
}
process.exit(failed ? 1 : 0)
