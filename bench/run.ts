// npm run bench [-- --json] [--list] [prefix...]: runs the benchmarks with a
// figure starting with one of the prefixes (all when none), on DATABASE_URL or
// a throwaway embedded PostgreSQL, and prints a table or one JSON object per
// figure. --list prints every figure name and runs nothing.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startEmbeddedPostgres } from '../server/demo/embedded-postgres.js'
import type { BenchContext, Figure } from './figures.js'
import { overhead } from './overhead.js'
import { migrate200, provision } from './provision.js'
import { rls, rlsFigures } from './rls.js'
import { SYNC_FIGURES, syncFanout } from './sync-fanout.js'
import { consumerInstall, installFigures } from './install.js'
import { moves, moveFigures } from './moves.js'
import { connections, connectionsFigures, overheadRealistic, realisticFigures, schemaTenants, schemaFigures } from './scale.js'
import { adminPages } from './admin-pages.js'
import { fleet, fleetFigures } from './fleet.js'

/**
 * Each benchmark with the names of the figures it prints, listed here so
 * `--list` needs to run nothing, and a prefix picks the benchmarks to run.
 */
const BENCHMARKS: Array<{ figures: readonly string[], run: (ctx: BenchContext) => Promise<Figure[]> }> = [
  { figures: ['overhead.bare.rps', 'overhead.tenant.rps', 'overhead.ratio', 'overhead.ratio.spread', 'overhead.context.ratio', 'overhead.ofContext'], run: overhead },
  { figures: realisticFigures, run: overheadRealistic },
  { figures: ['provision.template.ms', 'provision.clone.ms', 'provision.migrate.ms', 'provision.speedup'], run: provision },
  { figures: ['migrate200.c1.s', 'migrate200.c8.s'], run: migrate200 },
  { figures: connectionsFigures, run: connections },
  { figures: schemaFigures, run: schemaTenants },
  { figures: rlsFigures, run: rls },
  { figures: SYNC_FIGURES, run: syncFanout },
  { figures: installFigures, run: consumerInstall },
  { figures: moveFigures, run: moves },
  { figures: ['admin.pages.p95.ms'], run: adminPages },
  { figures: fleetFigures, run: fleet }
]

const { values, positionals } = parseArgs({ options: { json: { type: 'boolean', default: false }, list: { type: 'boolean', default: false } }, allowPositionals: true })
const picked = (name: string): boolean => positionals.length === 0 || positionals.some((p) => name.startsWith(p))
if (values.list) {
  for (const b of BENCHMARKS) for (const name of b.figures) if (picked(name)) console.log(name)
  process.exit(0)
}
const chosen = BENCHMARKS.filter((b) => b.figures.some(picked))
if (chosen.length === 0) {
  console.error(`No figure starts with ${positionals.join(', ')}; npm run bench -- --list names them all.`)
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
    const group = bench.figures[0]?.split('.')[0] ?? 'benchmark'
    log(`running ${group}…`)
    // One benchmark that fails is reported and the others still run: a figure missing from the table says which.
    try {
      for (const figure of await bench.run({ serverUrl, log })) {
        if (!bench.figures.includes(figure.name)) throw new Error(`figure ${figure.name} is not in its benchmark's list in bench/run.ts`)
        if (!picked(figure.name)) continue
        figures.push(figure)
        if (values.json) console.log(JSON.stringify({ name: figure.name, value: figure.value, unit: figure.unit }))
      }
    } catch (error) {
      failed = true
      console.error(`Benchmark ${group} failed: ${(error as Error).message}`)
    }
  }
} finally {
  await stop()
}
if (!values.json && figures.length > 0) {
  const width = Math.max(...figures.map((f) => f.name.length))
  console.log('')
  for (const f of figures) console.log(`${f.name.padEnd(width)}  ${String(f.value).padStart(10)} ${f.unit.padEnd(6)} ${f.note ?? ''}`)
}
process.exit(failed ? 1 : 0)
