import cliProgress from 'cli-progress'
import type { Rollout, RolloutTenantResult } from '../rollouts/rollout-types.js'
import { printJson, printTable } from './output.js'

/** What a rollout prints as it runs: a bar per wave on a terminal, a line per tenant when piped, JSON lines with --json. */
export interface RolloutReporter {
  /** Call once the rollout is known (started or about to be resumed). */
  begin: (rollout: Rollout) => void
  onResult: (result: RolloutTenantResult) => void
  /** Stops the bars, prints the summary and the failures; returns the exit code. */
  end: (rollout: Rollout) => number
}

const waveLabel = (label: string, wave: number): string => wave === 0 ? `${label} (canary)` : label

/** The command a user runs to continue rollout `id`. */
const resumeCommand = (id: string, operation: string): string => `fastify-tenancy tenants:${operation} --resume ${id}`

/**
 * Progress of a rollout: one cli-progress bar per wave on a terminal, one
 * plain line per tenant when stdout is piped, one JSON object per line with
 * --json (`type: 'rollout'` at the start and the end, `type: 'tenant'` per tenant).
 */
export function rolloutReporter (label: string, json: boolean): RolloutReporter {
  const early: RolloutTenantResult[] = []
  let started = false
  let rolloutId = ''
  let bars: cliProgress.MultiBar | null = null
  const waveBars = new Map<number, { bar: cliProgress.SingleBar, failed: number }>()
  let interrupted: (() => void) | null = null

  const show = (r: RolloutTenantResult): void => {
    if (json) {
      printJson({ type: 'tenant', rollout: rolloutId, wave: r.wave, key: r.key, identifier: r.identifier, status: r.skipped === true ? 'skipped' : r.ok ? 'done' : 'failed', ok: r.ok, migrations: r.migrations, ...(r.error === undefined ? {} : { error: r.error }), ms: Math.round(r.ms) })
      return
    }
    if (bars !== null) {
      const w = waveBars.get(r.wave)
      if (w === undefined) return
      if (!r.ok) w.failed++
      w.bar.increment({ tenant: r.identifier, failed: w.failed })
      return
    }
    const detail = r.ok ? (r.migrations.length > 0 ? ` (${r.migrations.join(', ')})` : '') : `: ${r.error ?? 'unknown error'}`
    process.stdout.write(`${r.ok ? 'ok    ' : 'FAILED'}  ${r.identifier}${detail}\n`)
  }

  return {
    begin (rollout) {
      rolloutId = rollout.id
      started = true
      const total = rollout.waves.reduce((n, w) => n + Object.values(w.counts).reduce((a, b) => a + b, 0), 0)
      if (json) printJson({ type: 'rollout', event: 'start', id: rollout.id, operation: rollout.operation, status: rollout.status, counts: rollout.counts })
      else if (total > 0) process.stdout.write(`Rollout ${rollout.id}: ${total} tenant${total === 1 ? '' : 's'}${rollout.waves.length > 1 ? `, ${Object.values(rollout.waves[0]?.counts ?? {}).reduce((a, b) => a + b, 0)} in the canary wave` : ''}${rollout.counts.skipped > 0 ? `, ${rollout.counts.skipped} already up to date` : ''}.\n`)
      if (!json && process.stdout.isTTY === true && total > 0) {
        bars = new cliProgress.MultiBar({
          format: '{label} [{bar}] {value}/{total} tenants | {failed} failed | {tenant}',
          stream: process.stdout,
          hideCursor: true,
          clearOnComplete: false
        }, cliProgress.Presets.shades_classic)
        for (const w of rollout.waves) {
          const size = Object.values(w.counts).reduce((a, b) => a + b, 0)
          const before = size - w.counts.pending - w.counts.running
          const entry = { bar: bars.create(size, before, { label: waveLabel(label, w.wave), tenant: '', failed: w.counts.failed }), failed: w.counts.failed }
          // Tenants skipped at the start are counted by the results replayed below.
          entry.bar.update(before - early.filter((r) => r.wave === w.wave).length)
          waveBars.set(w.wave, entry)
        }
        // Ctrl-C mid-run: give the cursor back before leaving (the lease expires; --resume continues).
        interrupted = (): void => { bars?.stop(); process.exit(130) }
        process.once('SIGINT', interrupted)
      }
      for (const r of early.splice(0)) show(r)
    },
    onResult (result) {
      if (!started) early.push(result)
      else show(result)
    },
    end (rollout) {
      if (interrupted !== null) process.off('SIGINT', interrupted)
      bars?.stop()
      const c = rollout.counts
      const total = c.pending + c.running + c.done + c.failed + c.skipped
      if (json) {
        printJson({ type: 'rollout', event: 'end', id: rollout.id, operation: rollout.operation, status: rollout.status, haltReason: rollout.haltReason, goAt: rollout.goAt, counts: c })
      } else if (total === 0) {
        process.stdout.write('No tenants to work on.\n')
      } else {
        if (rollout.status === 'waiting' && rollout.goAt !== null && rollout.goAt.getTime() <= Date.now() + 1000) {
          process.stdout.write(`Rollout ${rollout.id} has its go; ${rollout.owner === null || rollout.owner === '' ? 'its runner' : rollout.owner} goes on with the rest.\n`)
        } else if (rollout.status === 'waiting') {
          process.stdout.write(`Rollout ${rollout.id} waits for a go after its canary wave${rollout.goAt === null ? '' : ` (it goes on by itself at ${rollout.goAt.toISOString()})`}: ${resumeCommand(rollout.id, rollout.operation)}.\n`)
        } else if (rollout.status === 'halted') {
          process.stdout.write(`Rollout ${rollout.id} halted (${rollout.haltReason ?? 'halted'}) with ${c.pending} tenant${c.pending === 1 ? '' : 's'} pending: ${resumeCommand(rollout.id, rollout.operation)} continues it.\n`)
        }
        process.stdout.write(`${label}: ${c.done + c.skipped} of ${total} tenants succeeded.\n`)
      }
      if (rollout.failed.length > 0) {
        process.stderr.write(`${c.failed} tenant${c.failed === 1 ? '' : 's'} failed:\n${rollout.failed.map((f) => `  ${f.identifier} (${f.key}): ${f.error}`).join('\n')}\n`)
      }
      return c.failed > 0 || rollout.status === 'halted' ? 1 : 0
    }
  }
}

/** One rollout, as `tenants:rollouts <id>` prints it. */
export function printRollout (r: Rollout): void {
  const lines = [
    `Rollout ${r.id}: ${r.operation}, ${r.status}${r.haltReason === null ? '' : ` (${r.haltReason})`}`,
    `Started by ${r.startedBy} at ${r.createdAt.toISOString()}${r.finishedAt === null ? '' : `, finished at ${r.finishedAt.toISOString()}`}`,
    ...(r.owner === null ? [] : [`Run by ${r.owner}, lease until ${r.leaseUntil?.toISOString() ?? ''}`]),
    ...(r.status === 'waiting' ? [r.goAt === null ? `Waits for a go: ${resumeCommand(r.id, r.operation)}` : `Goes on by itself at ${r.goAt.toISOString()}`] : []),
    `Migrations: ${r.migrations.length === 0 ? 'none' : r.migrations.join(', ')}`,
    `Failures: ${r.failures}${r.maxFailures === null ? '' : ` of at most ${r.maxFailures}`}`
  ]
  process.stdout.write(lines.join('\n') + '\n\n')
  printTable(r.waves.map((w) => ({ wave: w.name, pending: String(w.counts.pending), running: String(w.counts.running), done: String(w.counts.done), failed: String(w.counts.failed), skipped: String(w.counts.skipped) })), ['wave', 'pending', 'running', 'done', 'failed', 'skipped'])
  if (r.failed.length > 0) {
    process.stdout.write('\nFailed:\n')
    printTable(r.failed.map((f) => ({ tenant: f.identifier, wave: f.wave === 0 ? 'canary' : 'rollout', reason: f.error })), ['tenant', 'wave', 'reason'])
  }
}
