import cliProgress from 'cli-progress'
import type { TenantResult } from '../lifecycle/tenant-migrations.js'

/** Prints rows as a plain aligned table. */
export function printTable (rows: Array<Record<string, string>>, columns: string[]): void {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ').trimEnd()
  console.log(line(columns))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const row of rows) console.log(line(columns.map((c) => row[c] ?? '')))
}

/** Reports per-tenant progress: a progress bar on a terminal, a line per tenant when piped, nothing with --json. */
export function progressReporter (total: number, label: string, json: boolean): { onResult: (r: TenantResult) => void, stop: () => void } {
  if (json) return { onResult: () => {}, stop: () => {} }
  if (process.stdout.isTTY === true) {
    const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total} {tenant}`, hideCursor: true }, cliProgress.Presets.shades_classic)
    bar.start(total, 0, { tenant: '' })
    return { onResult: (r) => { bar.increment({ tenant: r.identifier }) }, stop: () => { bar.stop() } }
  }
  return {
    onResult: (r) => { console.log(r.ok ? `ok      ${r.identifier}${r.migrations.length > 0 ? ` (${r.migrations.join(', ')})` : ''}` : `failed  ${r.identifier}: ${r.error ?? ''}`) },
    stop: () => {}
  }
}

/** The closing summary; throws (exit 1) when any tenant failed. */
export function summarize (results: TenantResult[], json: boolean, what: string): number {
  const failed = results.filter((r) => !r.ok)
  if (json) console.log(JSON.stringify(results))
  else console.log(`${what}: ${results.length - failed.length} of ${results.length} tenants succeeded.`)
  if (failed.length > 0) {
    console.error(`Failed tenants:\n${failed.map((r) => `  ${r.identifier}: ${r.error ?? 'unknown error'}`).join('\n')}`)
    return 1
  }
  return 0
}
