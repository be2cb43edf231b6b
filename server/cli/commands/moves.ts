import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import type { MoveRecord } from '../../moves/move-store.js'
import { withApp, type GlobalOptions } from '../app.js'
import { CliUsageError } from '../../errors.js'
import { printJson, printTable } from '../output.js'

/** One end of a move in words: a host, or (strategy shared) the shared tables or a database of the tenant's own. */
function place (host: string, isolation: MoveRecord['fromIsolation'], other: MoveRecord['fromIsolation']): string {
  if (isolation === 'schema') return 'its own schema'
  if (isolation === 'database') return other === 'database' ? host : `its own database on ${host}`
  return other != null ? 'the shared tables' : host
}

function described (move: MoveRecord): string {
  const from = place(move.fromHost, move.fromIsolation, move.toIsolation)
  const to = place(move.toHost, move.toIsolation, move.fromIsolation)
  const source = `the source ${from === move.fromHost ? 'on' : 'in'} ${from}`
  const when = move.state !== 'done'
    ? ''
    : move.sourceDroppedAt != null
      ? `; ${source} was dropped at ${move.sourceDroppedAt.toISOString()}`
      : move.keepUntil !== null ? `; ${source} is kept until ${move.keepUntil.toISOString()}` : ''
  return `${move.mode} move ${from} -> ${to}: ${move.state}, last step ${move.step}${move.error === null ? '' : ` (failed: ${move.error})`}${when}`
}

/**
 * Runs a move (or an isolate, a consolidate) and prints its steps; one cut
 * short after it began gets the sentence that says how to finish or undo it.
 */
async function runMove (
  app: FastifyInstance, tenant: Tenant, json: boolean, again: (record: MoveRecord) => string, start: (onStep: (step: string) => void) => Promise<MoveRecord>
): Promise<MoveRecord> {
  try {
    return await start((step) => { if (!json) process.stdout.write(`  ${step}\n`) })
  } catch (error) {
    // Cut short after it began (the tenant may be held meanwhile): say how to go on, whatever failed.
    const cut = await app.tenancy.moves.status(tenant).catch(() => null)
    if (cut?.state === 'running' && error instanceof Error) {
      const next = cut.step === 'switched'
        ? `run ${again(cut)} again to finish it`
        : `run ${again(cut)}${cut.mode === 'offline' ? ' --offline' : ''} again to finish it, or tenants:move ${tenant.identifier} --abort to undo it`
      error.message = `${error.message.replace(/\s*$/, '')}${/[.!?]$/.test(error.message.trim()) ? '' : '.'} The move stopped after step "${cut.step}": ${next}.`
    }
    throw error
  }
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
          move = await runMove(app, tenant, flags.json === true, (cut) => `tenants:move ${tenant.identifier} --to ${cut.toHost}`,
            async (onStep) => await app.tenancy.move(tenant, { host: flags.to as string, offline: flags.offline === true, onStep }))
        }
        if (flags.json === true) printJson(move)
        else process.stdout.write(move === null ? `Tenant ${tenant.identifier} has never moved.\n` : `Tenant ${tenant.identifier}: ${described(move)}.\n`)
      })
    })

  program.command('tenants:isolate')
    .description('strategy shared: move a tenant\'s rows out of the shared tables into a database (or schema) of its own, with the same tables and row-level security, online with logical replication or --offline; run it again to finish one cut short, tenants:move <tenant> --abort to undo it')
    .argument('<tenant>', 'identifier or key')
    .option('--into <kind>', 'database (default): a database of its own; schema: a schema of its own in the shared tables\' database (with --offline)')
    .option('--to <host>', 'the database host of its database, a name from database.hosts (default: the default host)')
    .option('--offline', 'copy with the tenant\'s requests held (no logical replication needed)')
    .option('--json', 'print the move as JSON')
    .action(async (name: string, flags: { into?: string, to?: string, offline?: boolean, json?: boolean }) => {
      if (flags.into !== undefined && flags.into !== 'database' && flags.into !== 'schema') throw new CliUsageError('--into takes database or schema.')
      const into = flags.into === 'schema' ? 'schema' as const : 'database' as const
      await withApp(global(), async (app) => {
        const [tenant] = await app.tenancy.tenants.select([name]) as [Tenant]
        const again = (cut: MoveRecord): string => into === 'schema' ? `tenants:isolate ${tenant.identifier} --into schema` : `tenants:isolate ${tenant.identifier} --to ${cut.toHost}`
        const move = await runMove(app, tenant, flags.json === true, again,
          async (onStep) => await app.tenancy.isolate(tenant, { into, host: flags.to, offline: flags.offline === true, onStep }))
        if (flags.json === true) printJson(move)
        else process.stdout.write(`Tenant ${tenant.identifier}: ${described(move)}.\n`)
      })
    })

  program.command('tenants:consolidate')
    .description('strategy shared: move an isolated tenant\'s rows back into the shared tables, online with logical replication or --offline; its database is kept for moves.keepSourceMs, then dropped')
    .argument('<tenant>', 'identifier or key')
    .option('--offline', 'copy with the tenant\'s requests held (no logical replication needed)')
    .option('--json', 'print the move as JSON')
    .action(async (name: string, flags: { offline?: boolean, json?: boolean }) => {
      await withApp(global(), async (app) => {
        const [tenant] = await app.tenancy.tenants.select([name]) as [Tenant]
        const move = await runMove(app, tenant, flags.json === true, () => `tenants:consolidate ${tenant.identifier}`,
          async (onStep) => await app.tenancy.consolidate(tenant, { offline: flags.offline === true, onStep }))
        if (flags.json === true) printJson(move)
        else process.stdout.write(`Tenant ${tenant.identifier}: ${described(move)}.\n`)
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
