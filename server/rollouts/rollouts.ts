import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Tenant } from '../tenant.js'
import type { TenantResult } from '../lifecycle/tenant-migrations.js'
import type { MigrationState } from '../lifecycle/migration-states.js'
import { RolloutBusyError, RolloutFinishedError, RolloutNotFoundError, InvalidRolloutError, TenantNotFoundError } from '../errors.js'
import { misuse } from '../misuse.js'
import type { RolloutLedger, LedgerTenant } from './rollout-ledger.js'
import { checkInput, type CheckedInput } from './rollout-input.js'
import type { Rollout, RolloutInput, RolloutOperation, RolloutsApi, RunOptions } from './rollout-types.js'

/** What the rollouts work with. */
export interface RolloutsParts {
  ledger: RolloutLedger
  /** Tenants by identifiers or keys (all when none), minus the skipped. */
  select: (names?: readonly string[], skip?: readonly string[]) => Promise<Tenant[]>
  /** What each tenant database had run when last seen (central, no connection to theirs). */
  states: (keys: readonly string[]) => Promise<Map<string, MigrationState>>
  /** The tenant migrations, in order. */
  migrations: () => Promise<string[]>
  /** One tenant's migrate, rollback or seed: the plugin's own per-tenant path (its lock, its state record). */
  step: (operation: RolloutOperation, tenant: Pick<Tenant, 'key' | 'identifier'>) => Promise<TenantResult>
  /** The names of database.hosts, and the one a tenant without a host is on. */
  hosts: readonly string[]
  defaultHost: string
  /** Strategy `shared` has one set of tables: its migrate is not per tenant. */
  shared: boolean
  /** Whether provisioning.seeder is set. */
  canSeed: boolean
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Rollouts: a migrate, rollback or seed over many tenants recorded in the
 * ledger first, then run wave by wave, at most `concurrency` tenants at once
 * on each database host, by whichever instance holds the rollout's lease.
 */
export class Rollouts implements RolloutsApi {
  constructor (private readonly parts: RolloutsParts) {}

  async start (input: RolloutInput = {}, options: RunOptions = {}): Promise<Rollout> {
    if (this.parts.shared) throw new InvalidRolloutError('Strategy shared migrates its shared tables once for every tenant: use app.tenancy.migrate() (tenants:migrate does), not a rollout.')
    const c = checkInput(input, this.parts.hosts)
    if (c.operation === 'seed' && !this.parts.canSeed) throw misuse.noSeeder()
    const tenants = await this.chosen(c)
    const keys = await this.parts.ledger.order(tenants.map((t) => t.key), c.order)
    const byKey = new Map(tenants.map((t) => [t.key, t]))
    const ordered = keys.map((k) => byKey.get(k) as Tenant)
    const migrations = await this.parts.migrations()
    // Up to date as last recorded centrally: skipped without connecting to their databases.
    const upToDate = new Set<string>()
    if (c.operation === 'migrate') {
      for (const [key, state] of await this.parts.states(keys)) {
        if (state.error === null && state.pending.length === 0 && migrations.every((m) => state.executed.includes(m))) upToDate.add(key)
      }
    }
    // A canary is tenants that will run: up-to-date ones would leave the wave empty and the fleet ungated.
    const canary = this.canaryOf(c, ordered, upToDate)
    const rows: LedgerTenant[] = ordered.map((t) => ({
      key: t.key,
      identifier: t.identifier,
      host: t.databaseHost ?? this.parts.defaultHost,
      wave: canary.has(t.key) ? 0 : 1,
      status: upToDate.has(t.key) ? 'skipped' : 'pending'
    }))
    const toRun = rows.filter((r) => r.status === 'pending').length
    const maxFailures = c.maxFailures === null ? null : 'count' in c.maxFailures ? c.maxFailures.count : Math.max(1, Math.ceil(toRun * c.maxFailures.percent / 100))
    const id = await this.parts.ledger.create({
      operation: c.operation,
      migrations,
      startedBy: c.startedBy,
      options: {
        tenants: c.tenants,
        skipTenants: c.skipTenants,
        hosts: c.hosts,
        statuses: c.statuses,
        concurrency: c.concurrency,
        canary: c.canary,
        canaryWaitMs: c.canaryWaitMs,
        maxFailures: input.maxFailures ?? null,
        order: c.order
      },
      released: !rows.some((r) => r.wave === 0 && r.status === 'pending'),
      maxFailures,
      leaseMs: c.leaseMs,
      // Nobody runs it until run() or resume() takes the lease.
      owner: ''
    }, rows)
    await this.parts.ledger.release(id, '')
    for (const r of rows) if (r.status === 'skipped') options.onResult?.({ key: r.key, identifier: r.identifier, ok: true, migrations: [], ms: 0, wave: r.wave, skipped: true })
    return await this.get(id)
  }

  async run (id: string, options: RunOptions = {}): Promise<Rollout> {
    return await this.drive(id, false, options)
  }

  async resume (id: string, options: RunOptions = {}): Promise<Rollout> {
    return await this.drive(id, true, options)
  }

  async halt (id: string, reason = 'halted by hand'): Promise<Rollout> {
    const checked = checkId(id)
    if (!await this.parts.ledger.halt(checked, reason.slice(0, 500))) {
      const row = await this.parts.ledger.row(checked)
      if (row === null) throw new RolloutNotFoundError(checked)
      if (row.status === 'done' || row.status === 'failed') throw new RolloutFinishedError(checked, String(row.status))
    }
    return await this.get(checked)
  }

  async list (page: { page?: number, perPage?: number } = {}): Promise<{ rollouts: Awaited<ReturnType<RolloutLedger['list']>>['rollouts'], total: number }> {
    const p = page.page ?? 1
    const perPage = page.perPage ?? 20
    if (!Number.isSafeInteger(p) || p < 1 || !Number.isSafeInteger(perPage) || perPage < 1 || perPage > 500) throw new InvalidRolloutError('page must be a whole number of at least 1, and perPage between 1 and 500.')
    return await this.parts.ledger.list(p, perPage)
  }

  async get (id: string): Promise<Rollout> {
    const checked = checkId(id)
    const rollout = await this.parts.ledger.get(checked)
    if (rollout === null) throw new RolloutNotFoundError(checked)
    return rollout
  }

  /** The tenants a rollout works on: the named ones, or every active or suspended tenant, filtered by host and status. */
  private async chosen (c: CheckedInput): Promise<Tenant[]> {
    const all = await this.parts.select(c.tenants, c.skipTenants)
    const named = c.tenants !== undefined && c.tenants.length > 0
    const statuses = c.statuses ?? (named ? null : ['active', 'suspended'])
    return all.filter((t) =>
      (statuses === null || statuses.includes(t.status)) && (c.hosts === undefined || c.hosts.includes(t.databaseHost ?? this.parts.defaultHost)))
  }

  /** The canary wave: the first `canary` tenants that will run (in the rollout's order), or the named ones, of which at least one must run. */
  private canaryOf (c: CheckedInput, ordered: Tenant[], upToDate: ReadonlySet<string>): Set<string> {
    if (c.canary === null) return new Set()
    if (typeof c.canary === 'number') return new Set(ordered.filter((t) => !upToDate.has(t.key)).slice(0, c.canary).map((t) => t.key))
    const keys = new Set<string>()
    for (const name of c.canary) {
      const t = ordered.find((x) => x.identifier === name || x.key === name)
      if (t === undefined) throw new InvalidRolloutError(`--canary names "${name.slice(0, 60)}", which is not among the tenants this rollout works on.`)
      keys.add(t.key)
    }
    if (ordered.some((t) => !upToDate.has(t.key)) && [...keys].every((k) => upToDate.has(k))) {
      throw new InvalidRolloutError('every canary tenant named is up to date already, so the canary wave would run nothing and the rest would go ungated: name tenants that have migrations to run, or give a number.')
    }
    return keys
  }

  /** Takes the lease and runs the rollout until it finishes, halts, waits for a go, or the lease is lost. */
  private async drive (id: string, resume: boolean, options: RunOptions): Promise<Rollout> {
    const checked = checkId(id)
    const ledger = this.parts.ledger
    const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
    if (await ledger.acquire(checked, owner) === null) {
      const row = await ledger.row(checked)
      if (row === null) throw new RolloutNotFoundError(checked)
      if (row.status === 'done' || row.status === 'failed') throw new RolloutFinishedError(checked, String(row.status))
      // Waiting after its canary wave in another process (--canary-wait): the go is the ledger's, and its runner goes on.
      if (resume && row.status === 'waiting' && await ledger.go(checked)) return await this.get(checked)
      throw new RolloutBusyError(checked, String(row.owner), new Date(row.lease_until as string).toISOString())
    }
    const first = await ledger.row(checked) as Record<string, unknown>
    const operation = first.operation as RolloutOperation
    const leaseMs = Number(first.lease_ms)
    const concurrency = Number((first.options as { concurrency?: number } | null)?.concurrency ?? 4)
    const canaryWaitMs = (first.options as { canaryWaitMs?: number | null } | null)?.canaryWaitMs ?? null
    let lost = false
    let renewing: Promise<unknown> = Promise.resolve()
    const timer = setInterval(() => {
      renewing = ledger.renew(checked, owner).then((held) => { if (!held) lost = true }, () => {})
    }, Math.max(200, Math.floor(leaseMs / 3)))
    try {
      await ledger.recoverInterrupted(checked, owner, operation)
      if (resume && (first.status === 'halted' || first.status === 'waiting')) await ledger.setStatus(checked, owner, 'running', { released: true, goAt: null, haltReason: null })
      while (!lost) {
        const row = await ledger.row(checked)
        if (row === null || row.owner !== owner) break
        if (row.status === 'waiting') {
          if (row.go_at === null) break
          if (row.go_due === true) { await ledger.setStatus(checked, owner, 'running', { released: true, goAt: null }); continue }
          await sleep(Math.min(1000, Math.max(10, new Date(row.go_at as string).getTime() - Date.now())))
          continue
        }
        if (row.status !== 'running') break
        const wave = await ledger.nextWave(checked)
        if (wave === null) { await ledger.finish(checked, owner); break }
        if (wave > 0 && row.released !== true) {
          const failed = await ledger.failedIn(checked, 0)
          if (failed > 0) await ledger.setStatus(checked, owner, 'halted', { haltReason: `the canary wave failed: ${failed} tenant${failed === 1 ? '' : 's'}` })
          else await ledger.setStatus(checked, owner, 'waiting', { goAt: canaryWaitMs === null ? null : new Date(Date.now() + canaryWaitMs) })
          continue
        }
        await this.runWave(checked, owner, operation, wave, concurrency, options, () => lost)
      }
    } finally {
      clearInterval(timer)
      await renewing
      await ledger.release(checked, owner).catch(() => {})
    }
    return await this.get(checked)
  }

  /** One wave: on each host, `concurrency` workers claim and run its tenants until none is left or the rollout stops. */
  private async runWave (
    id: string, owner: string, operation: RolloutOperation, wave: number, concurrency: number, options: RunOptions, lost: () => boolean
  ): Promise<void> {
    const ledger = this.parts.ledger
    const hosts = await ledger.hostsOf(id, wave)
    const worker = async (host: string): Promise<void> => {
      while (!lost()) {
        const claimed = await ledger.claim(id, owner, wave, host)
        if (claimed === null) return
        let result: TenantResult
        try {
          result = await this.parts.step(operation, claimed)
        } catch (error) {
          result = { key: claimed.key, identifier: claimed.identifier, ok: false, migrations: [], error: (error as Error).message, ms: 0 }
        }
        if (result.ok) {
          await ledger.succeed(id, owner, claimed.key, result.migrations)
        } else if (isGone(result)) {
          // Deleted while the rollout ran: nothing left to migrate.
          await ledger.succeed(id, owner, claimed.key, [], true)
        } else {
          await ledger.fail(id, owner, claimed.key, result.error ?? 'failed')
        }
        options.onResult?.({ ...result, wave })
      }
    }
    await Promise.all(hosts.flatMap((host) => Array.from({ length: concurrency }, async () => { await worker(host) })))
  }
}

function isGone (result: TenantResult): boolean {
  return result.code === new TenantNotFoundError('').code
}

/** A rollout id is a positive whole number (as text). */
function checkId (id: unknown): string {
  const text = String(id ?? '').trim()
  if (!/^[1-9][0-9]{0,17}$/.test(text)) throw new RolloutNotFoundError(text.slice(0, 40))
  return text
}
