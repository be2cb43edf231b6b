import type { Command } from 'commander'
import type { Tenant } from '../../tenant.js'
import type { MoveRecord } from '../../moves/move-store.js'
import { withApp, type GlobalOptions } from '../app.js'
import { CliUsageError } from '../../errors.js'
import { printJson, printTable } from '../output.js'

function described (move: MoveRecord): string {
  const when = move.state !== 'done'
    ? ''
    : move.sourceDroppedAt != null
      ? `; the source on ${move.fromHost} was dropped at ${move.sourceDroppedAt.toISOString()}`
      : move.keepUntil !== null ? `; the source on ${move.fromHost} is kept until ${move.keepUntil.toISOString()}` : ''
  return `${move.mode} move ${move.fromHost} -> ${move.toHost}: ${move.state}, last step ${move.step}${move.error === null ? '' : ` (failed: ${move.error})`}${when}`
}

/** tenants:move (and --abort, --status) and moves:sweep. */
export function registerMoveCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:move')
    .description('move a tenant\'s database to another database host: online with logical replication (requests held only at the switch), or --offline; run it again to finish a move cut short, or --abort to undo it')
    .argument('<tenant>', 'identifier or key')
    .option('--to <host>', 'the database host to move to, a name from database.hosts')
    .option('--offline', 'copy with the tenant\'s requests held (no logical replication needed)')
    .option('--abort', 'undo the tenant\'s move that has not switched yet')
    .option('--status', 'print the tenant\'s latest move and change nothing')
    .option('--json', 'print the move as JSON')
    .action(async (name: string, flags: { to?: string, offline?: boolean, abort?: boolean, status?: boolean, json?: boolean }) => {
      const chosen = [flags.to !== undefined, flags.abort === true, flags.status === true].filter(Boolean).length
      if (chosen !== 1) throw new CliUsageError('Give exactly one of --to <host>, --abort or --status.')
      await withApp(global(), async (app) => {
        const [tenant] = await app.tenancy.tenants.select([name]) as [Tenant]
        let move: MoveRecord | null
        if (flags.status === true) {
          move = await app.tenancy.moves.status(tenant)
        } else if (flags.abort === true) {
          move = await app.tenancy.moves.abort(tenant)
        } else {
          try {
            move = await app.tenancy.move(tenant, {
              host: flags.to as string,
              offline: flags.offline === true,
              onStep: (step) => { if (flags.json !== true) process.stdout.write(`  ${step}\n`) }
            })
          } catch (error) {
            // Cut short after it began (the tenant may be held meanwhile): say how to go on, whatever failed.
            const cut = await app.tenancy.moves.status(tenant).catch(() => null)
            if (cut?.state === 'running' && error instanceof Error) {
              const next = cut.step === 'switched'
                ? `run tenants:move ${tenant.identifier} --to ${cut.toHost} again to finish it`
                : `run tenants:move ${tenant.identifier} --to ${cut.toHost}${cut.mode === 'offline' ? ' --offline' : ''} again to finish it, or tenants:move ${tenant.identifier} --abort to undo it`
              error.message = `${error.message.replace(/\s*$/, '')}${/[.!?]$/.test(error.message.trim()) ? '' : '.'} The move stopped after step "${cut.step}": ${next}.`
            }
            throw error
          }
        }
        if (flags.json === true) printJson(move)
        else process.stdout.write(move === null ? `Tenant ${tenant.identifier} has never moved.\n` : `Tenant ${tenant.identifier}: ${described(move)}.\n`)
      })
    })

  program.command('tenants:rebalance')
    .description('propose moves that even out the database hosts by the size of their tenants (--plan), or run them one at a time (--apply)')
    .option('--plan', 'print the proposed moves and change nothing')
    .option('--apply', 'run the proposed moves, one at a time, each an online move')
    .option('--json', 'print the plan (and the moves made) as JSON')
    .action(async (flags: { plan?: boolean, apply?: boolean, json?: boolean }) => {
      if ((flags.plan === true) === (flags.apply === true)) throw new CliUsageError('Give exactly one of --plan or --apply.')
      await withApp(global(), async (app) => {
        // By size: a command's process serves no requests, so it has no load to go by (app.tenancy.rebalance.plan('load') in a serving instance has).
        const plan = await app.tenancy.rebalance.plan('size')
        if (flags.json !== true) {
          printTable(plan.hosts.map((h) => ({ host: h.host, 'tenants now': String(h.tenants), 'tenants after': String(h.tenantsAfter), 'bytes now': String(h.before), 'bytes after': String(h.after) })), ['host', 'tenants now', 'tenants after', 'bytes now', 'bytes after'])
          process.stdout.write('\n')
          if (plan.moves.length === 0) process.stdout.write('The hosts are as even as moving tenants can make them: no move proposed.\n')
          else printTable(plan.moves.map((m) => ({ tenant: m.identifier, from: m.from, to: m.to, bytes: String(m.weight) })), ['tenant', 'from', 'to', 'bytes'])
        }
        if (flags.plan === true) {
          if (flags.json === true) printJson(plan)
          return
        }
        const records = await app.tenancy.rebalance.apply(plan, (m, record) => {
          if (flags.json !== true) process.stdout.write(`Moved ${m.identifier}: ${described(record)}.\n`)
        })
        if (flags.json === true) printJson({ ...plan, done: records })
      })
    })

  program.command('moves:sweep')
    .description('drop the kept source databases of moved tenants whose keeping time (moves.keepSourceMs) is over')
    .option('--json', 'print { dropped } as JSON')
    .action(async (flags: { json?: boolean }) => {
      await withApp(global(), async (app) => {
        const dropped = await app.tenancy.moves.sweep()
        if (flags.json === true) printJson({ dropped })
        else process.stdout.write(`Dropped ${dropped} kept source database${dropped === 1 ? '' : 's'}.\n`)
      })
    })
}
