import cliProgress from 'cli-progress'
import type { TenantResult } from '../lifecycle/tenant-migrations.js'

/** Prints one line of JSON on stdout. */
export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n')
}

/** Prints rows as a plain aligned table, a dashed rule under the header. */
export function printTable (rows: Array<Record<string, string>>, columns: readonly string[]): void {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ').trimEnd()
  const out = [line([...columns]), line(widths.map((w) => '-'.repeat(w))), ...rows.map((row) => line(columns.map((c) => row[c] ?? '')))]
  process.stdout.write(out.join('\n') + '\n')
}

export interface Progress {
  /** Call as each tenant finishes. */
  onResult: (result: TenantResult) => void
  stop: () => void
}

/**
 * Per-tenant progress: a progress bar (cli-progress) when stdout is a
 * terminal, one plain line per tenant when it is piped, nothing with --json
 * (the results are printed at the end).
 */
export function progressReporter (total: number, label: string, json: boolean): Progress {
  if (json || total === 0) return { onResult: () => {}, stop: () => {} }
  if (process.stdout.isTTY === true) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {value}/{total} tenants | {failed} failed | {tenant}`,
      stream: process.stdout,
      hideCursor: true,
      clearOnComplete: false
    }, cliProgress.Presets.shades_classic)
    let failed = 0
    bar.start(total, 0, { tenant: '', failed })
    // Ctrl-C mid-run: give the cursor back before leaving.
    const interrupted = (): void => { bar.stop(); process.exit(130) }
    process.once('SIGINT', interrupted)
    return {
      onResult: (r) => {
        if (!r.ok) failed++
        bar.increment({ tenant: r.identifier, failed })
      },
      stop: () => {
        process.off('SIGINT', interrupted)
        bar.stop()
      }
    }
  }
  return {
    onResult: (r) => {
      const detail = r.ok ? (r.migrations.length > 0 ? ` (${r.migrations.join(', ')})` : '') : `: ${r.error ?? 'unknown error'}`
      process.stdout.write(`${r.ok ? 'ok    ' : 'FAILED'}  ${r.identifier}${detail}\n`)
    },
    stop: () => {}
  }
}

/**
 * The closing summary (or the JSON array of results); the failed tenants,
 * with their reasons, on stderr. Returns the exit code: 0 only when every
 * tenant succeeded.
 */
export function summarize (results: readonly TenantResult[], json: boolean, label: string): number {
  const failed = results.filter((r) => !r.ok)
  if (json) printJson(results.map((r) => ({ ...r, ms: Math.round(r.ms) })))
  else if (results.length === 0) process.stdout.write('No tenants to work on.\n')
  else process.stdout.write(`${label}: ${results.length - failed.length} of ${results.length} tenants succeeded.\n`)
  if (failed.length === 0) return 0
  process.stderr.write(`${failed.length} tenant${failed.length === 1 ? '' : 's'} failed:\n${failed.map((r) => `  ${r.identifier} (${r.key}): ${r.error ?? 'unknown error'}`).join('\n')}\n`)
  return 1
}
