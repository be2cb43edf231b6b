import type { SqlExecutor } from '../providers/provider.js'
import type { CentralTables } from '../database/central-schema.js'
import type { Rollout, RolloutCounts, RolloutOperation, RolloutOrder, RolloutStatus, RolloutSummary } from './rollout-types.js'

/** A tenant as the ledger records it before the rollout runs. */
export interface LedgerTenant {
  key: string
  identifier: string
  host: string
  wave: number
  status: 'pending' | 'skipped'
}

/** A tenant claimed by a runner. */
export interface ClaimedTenant {
  key: string
  identifier: string
  wave: number
  host: string
}

export interface NewRollout {
  operation: RolloutOperation
  migrations: readonly string[]
  startedBy: string
  options: Record<string, unknown>
  released: boolean
  maxFailures: number | null
  leaseMs: number
  owner: string
}

/** The SQL ORDER BY of each order a rollout may take (never user text in SQL). */
const ORDER_SQL: Record<RolloutOrder, string> = {
  identifier: 't.identifier',
  name: 't.name, t.identifier',
  created: 't.created_at, t.identifier',
  host: 't.database_host nulls first, t.identifier',
  cluster: 't.tenant_cluster_id nulls last, t.identifier',
  status: 't.status, t.identifier',
  key: 't.key'
}

const EMPTY_COUNTS = (): RolloutCounts => ({ pending: 0, running: 0, done: 0, failed: 0, skipped: 0 })

/** A text[] parameter as PostgreSQL's array literal. */
function textArray (values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')}}`
}

/**
 * The rollout ledger: every statement on tenant_rollouts and
 * tenant_rollout_tenants is here. The guarantees live in the statements:
 * a runner claims a tenant only while it holds the rollout's lease and the
 * rollout is running, claims skip rows another runner has locked, and a
 * runner's result counts only while the row is still its claim.
 */
export class RolloutLedger {
  constructor (private readonly execute: SqlExecutor, private readonly t: CentralTables) {}

  /** These tenants' keys in the rollout's order (from the central tenants table). */
  async order (keys: readonly string[], order: RolloutOrder): Promise<string[]> {
    if (keys.length === 0) return []
    const rows = await this.execute(`select t.key from ${this.t.tenants} t where t.key = any(?::uuid[]) order by ${ORDER_SQL[order]}`, [`{${keys.join(',')}}`])
    return rows.map((r) => String(r.key))
  }

  /** Records a rollout with its tenants, held by `owner` from the start; returns its id. */
  async create (rollout: NewRollout, tenants: readonly LedgerTenant[]): Promise<string> {
    const rows = await this.execute(`with r as (
        insert into ${this.t.tenant_rollouts} (operation, migrations, started_by, options, status, released, max_failures, lease_ms, owner, lease_until)
        values (?, ?::text[], ?, ?::jsonb, 'running', ?, ?, ?, ?, now() + ? * interval '1 millisecond') returning id
      ), t as (
        insert into ${this.t.tenant_rollout_tenants} (rollout_id, tenant_key, identifier, host, wave, position, status, finished_at)
        select r.id, x.key, x.identifier, x.host, x.wave, x.position, x.status, case when x.status = 'skipped' then now() end
        from r, unnest(?::uuid[], ?::text[], ?::text[], ?::int[], ?::int[], ?::text[]) as x (key, identifier, host, wave, position, status)
      )
      select id::text as id from r`, [
      rollout.operation, textArray(rollout.migrations), rollout.startedBy, JSON.stringify(rollout.options), rollout.released,
      rollout.maxFailures, rollout.leaseMs, rollout.owner, rollout.leaseMs,
      `{${tenants.map((x) => x.key).join(',')}}`, textArray(tenants.map((x) => x.identifier)), textArray(tenants.map((x) => x.host)),
      `{${tenants.map((x) => x.wave).join(',')}}`, `{${tenants.map((_, i) => i).join(',')}}`, textArray(tenants.map((x) => x.status))
    ])
    return String(rows[0]?.id)
  }

  /** The rollout's row, or null. */
  async row (id: string): Promise<Record<string, unknown> | null> {
    const rows = await this.execute(`select *, id::text as id, lease_until > now() as leased, go_at <= now() as go_due from ${this.t.tenant_rollouts} where id = ?`, [id])
    return rows[0] ?? null
  }

  /**
   * Takes the rollout's lease for `owner` when it is free (nobody holds it,
   * or its holder let it expire) or already `owner`'s; one statement, so of
   * two instances asking at once one gets it. Returns the row, or null when
   * another holds it.
   */
  async acquire (id: string, owner: string): Promise<Record<string, unknown> | null> {
    const rows = await this.execute(`update ${this.t.tenant_rollouts} set owner = ?, lease_until = now() + lease_ms * interval '1 millisecond', updated_at = now()
      where id = ? and status in ('running', 'waiting', 'halted') and (owner is null or owner = ? or lease_until is null or lease_until <= now())
      returning id::text as id`, [owner, id, owner])
    return rows[0] ?? null
  }

  /** Extends the lease; false when `owner` lost it (another took over after it expired). */
  async renew (id: string, owner: string): Promise<boolean> {
    const rows = await this.execute(`update ${this.t.tenant_rollouts} set lease_until = now() + lease_ms * interval '1 millisecond' where id = ? and owner = ? returning id`, [id, owner])
    return rows.length > 0
  }

  /** Gives the lease up (the rollout stopped running here). */
  async release (id: string, owner: string): Promise<void> {
    await this.execute(`update ${this.t.tenant_rollouts} set owner = null, lease_until = null, updated_at = now() where id = ? and owner = ?`, [id, owner])
  }

  /**
   * Tenants another runner claimed and never finished (it died, or lost its
   * lease): a migrate runs them again, which is safe (a tenant runs under
   * its lifecycle lock and `up` runs only what it has not run); a rollback
   * or seed is not repeatable, so they are failed with the reason.
   */
  async recoverInterrupted (id: string, owner: string, operation: RolloutOperation): Promise<number> {
    const rows = operation === 'migrate'
      ? await this.execute(`update ${this.t.tenant_rollout_tenants} set status = 'pending', claimed_by = null, started_at = null
          where rollout_id = ? and status = 'running' and claimed_by is distinct from ? returning tenant_key`, [id, owner])
      : await this.execute(`update ${this.t.tenant_rollout_tenants} set status = 'failed', finished_at = now(),
          error = 'interrupted: the process running it stopped before it finished; check this tenant, then run it again'
          where rollout_id = ? and status = 'running' and claimed_by is distinct from ? returning tenant_key`, [id, owner])
    return rows.length
  }

  /** Sets the status (and what goes with it) while `owner` holds the lease. */
  async setStatus (
    id: string, owner: string, status: RolloutStatus, extra: { released?: boolean, goAt?: Date | null, haltReason?: string | null } = {}
  ): Promise<void> {
    await this.execute(`update ${this.t.tenant_rollouts} set status = ?, released = coalesce(?, released),
        go_at = case when ?::boolean then ?::timestamptz else go_at end,
        halt_reason = case when ?::boolean then ?::text else halt_reason end,
        updated_at = now()
      where id = ? and owner = ?`, [status, extra.released ?? null, extra.goAt !== undefined, extra.goAt ?? null, extra.haltReason !== undefined, extra.haltReason ?? null, id, owner])
  }

  /** Gives a waiting rollout its go now, whoever runs it (its runner sees the go due); false when it is not waiting. */
  async go (id: string): Promise<boolean> {
    const rows = await this.execute(`update ${this.t.tenant_rollouts} set go_at = now(), updated_at = now() where id = ? and status = 'waiting' returning id`, [id])
    return rows.length > 0
  }

  /** Halts a running or waiting rollout, whoever runs it; false when it is not running or waiting. */
  async halt (id: string, reason: string): Promise<boolean> {
    const rows = await this.execute(`update ${this.t.tenant_rollouts} set status = 'halted', halt_reason = ?, go_at = null, updated_at = now()
      where id = ? and status in ('running', 'waiting') returning id`, [reason, id])
    return rows.length > 0
  }

  /** The lowest wave with pending tenants, or null. */
  async nextWave (id: string): Promise<number | null> {
    const rows = await this.execute(`select min(wave) as wave from ${this.t.tenant_rollout_tenants} where rollout_id = ? and status in ('pending', 'running')`, [id])
    const wave = rows[0]?.wave
    return wave === null || wave === undefined ? null : Number(wave)
  }

  /** The hosts with pending tenants in a wave. */
  async hostsOf (id: string, wave: number): Promise<string[]> {
    const rows = await this.execute(`select distinct host from ${this.t.tenant_rollout_tenants} where rollout_id = ? and wave = ? and status = 'pending'`, [id, wave])
    return rows.map((r) => String(r.host))
  }

  /**
   * Claims the next pending tenant of a wave on a host for `owner`, only
   * while `owner` holds the lease and the rollout runs; `skip locked`, so
   * two runners never take the same row and never wait for each other.
   */
  async claim (id: string, owner: string, wave: number, host: string): Promise<ClaimedTenant | null> {
    const rows = await this.execute(`update ${this.t.tenant_rollout_tenants} x set status = 'running', claimed_by = ?, started_at = now()
      where x.rollout_id = ? and x.tenant_key = (
        select p.tenant_key from ${this.t.tenant_rollout_tenants} p
        where p.rollout_id = ? and p.wave = ? and p.host = ? and p.status = 'pending'
          and exists (select 1 from ${this.t.tenant_rollouts} r where r.id = ? and r.status = 'running' and r.owner = ? and r.lease_until > now())
        order by p.position limit 1 for update skip locked)
      and x.status = 'pending'
      returning x.tenant_key::text as key, x.identifier, x.wave, x.host`, [owner, id, id, wave, host, id, owner])
    const r = rows[0]
    return r === undefined ? null : { key: String(r.key), identifier: String(r.identifier), wave: Number(r.wave), host: String(r.host) }
  }

  /** Records a claimed tenant's success; false when the claim is no longer `owner`'s. */
  async succeed (id: string, owner: string, key: string, migrations: readonly string[], skipped = false): Promise<boolean> {
    const rows = await this.execute(`update ${this.t.tenant_rollout_tenants} set status = ?, migrations = ?::text[], error = null, finished_at = now()
      where rollout_id = ? and tenant_key = ? and status = 'running' and claimed_by = ? returning tenant_key`, [skipped ? 'skipped' : 'done', textArray(migrations), id, key, owner])
    return rows.length > 0
  }

  /**
   * Records a claimed tenant's failure and counts it against the error
   * budget, halting the rollout when the budget is spent; returns whether
   * the rollout still runs.
   */
  async fail (id: string, owner: string, key: string, error: string): Promise<boolean> {
    const rows = await this.execute(`with f as (
        update ${this.t.tenant_rollout_tenants} set status = 'failed', error = ?, finished_at = now()
        where rollout_id = ? and tenant_key = ? and status = 'running' and claimed_by = ? returning tenant_key
      )
      update ${this.t.tenant_rollouts} r set failures = r.failures + 1,
        status = case when r.status = 'running' and r.max_failures is not null and r.failures + 1 >= r.max_failures then 'halted' else r.status end,
        halt_reason = case when r.status = 'running' and r.max_failures is not null and r.failures + 1 >= r.max_failures
          then 'the error budget is spent: ' || (r.failures + 1) || ' of at most ' || r.max_failures || ' failures allowed'
            || coalesce(' (maxFailures ' || (r.options::jsonb ->> 'maxFailures') || ')', '') else r.halt_reason end,
        updated_at = now()
      where r.id = ? and exists (select 1 from f)
      returning r.status`, [error.slice(0, 2000), id, key, owner, id])
    return rows[0]?.status === 'running'
  }

  /** How many tenants of a wave failed. */
  async failedIn (id: string, wave: number): Promise<number> {
    const rows = await this.execute(`select count(*)::int as n from ${this.t.tenant_rollout_tenants} where rollout_id = ? and wave = ? and status = 'failed'`, [id, wave])
    return Number(rows[0]?.n ?? 0)
  }

  /** Done or failed, once no tenant is pending or running; returns the status it ended with, or null when some remain. */
  async finish (id: string, owner: string): Promise<RolloutStatus | null> {
    const rows = await this.execute(`update ${this.t.tenant_rollouts} r set
        status = case when r.failures > 0 or exists (select 1 from ${this.t.tenant_rollout_tenants} x where x.rollout_id = r.id and x.status = 'failed') then 'failed' else 'done' end,
        finished_at = now(), owner = null, lease_until = null, updated_at = now()
      where r.id = ? and r.owner = ? and r.status = 'running'
        and not exists (select 1 from ${this.t.tenant_rollout_tenants} x where x.rollout_id = r.id and x.status in ('pending', 'running'))
      returning r.status`, [id, owner])
    return (rows[0]?.status as RolloutStatus | undefined) ?? null
  }

  /** A page of rollouts, newest first, with their counts. */
  async list (page: number, perPage: number): Promise<{ rollouts: RolloutSummary[], total: number }> {
    const rows = await this.execute(`select r.*, r.id::text as id, count(*) over () as total from ${this.t.tenant_rollouts} r order by r.id desc limit ? offset ?`, [perPage, (page - 1) * perPage])
    const counts = await this.counts(rows.map((r) => String(r.id)))
    const total = Number(rows[0]?.total ?? (page > 1 ? (await this.execute(`select count(*)::int as n from ${this.t.tenant_rollouts}`, []))[0]?.n ?? 0 : 0))
    return { rollouts: rows.map((r) => summaryOf(r, counts.get(String(r.id))?.all ?? EMPTY_COUNTS())), total }
  }

  /** One rollout with its waves and failures, or null. */
  async get (id: string): Promise<Rollout | null> {
    const row = await this.row(id)
    if (row === null) return null
    const counts = (await this.counts([id])).get(id) ?? { all: EMPTY_COUNTS(), waves: new Map<number, RolloutCounts>() }
    const failed = await this.execute(`select tenant_key::text as key, identifier, wave, error from ${this.t.tenant_rollout_tenants}
      where rollout_id = ? and status = 'failed' order by finished_at, position limit 200`, [id])
    return {
      ...summaryOf(row, counts.all),
      options: (row.options as Record<string, unknown> | null) ?? {},
      waves: [...counts.waves.entries()].sort((a, b) => a[0] - b[0]).map(([wave, c]) => ({ wave, name: wave === 0 ? 'canary' : 'rollout', counts: c })),
      failed: failed.map((f) => ({ key: String(f.key), identifier: String(f.identifier), wave: Number(f.wave), error: String(f.error ?? '') }))
    }
  }

  private async counts (ids: readonly string[]): Promise<Map<string, { all: RolloutCounts, waves: Map<number, RolloutCounts> }>> {
    const out = new Map<string, { all: RolloutCounts, waves: Map<number, RolloutCounts> }>()
    if (ids.length === 0) return out
    const rows = await this.execute(`select rollout_id::text as id, wave, status, count(*)::int as n from ${this.t.tenant_rollout_tenants}
      where rollout_id = any(?::bigint[]) group by rollout_id, wave, status`, [`{${ids.join(',')}}`])
    for (const r of rows) {
      const id = String(r.id)
      let entry = out.get(id)
      if (entry === undefined) { entry = { all: EMPTY_COUNTS(), waves: new Map() }; out.set(id, entry) }
      const wave = Number(r.wave)
      let w = entry.waves.get(wave)
      if (w === undefined) { w = EMPTY_COUNTS(); entry.waves.set(wave, w) }
      const status = r.status as keyof RolloutCounts
      w[status] += Number(r.n)
      entry.all[status] += Number(r.n)
    }
    return out
  }
}

function dateOrNull (v: unknown): Date | null {
  return v === null || v === undefined ? null : new Date(v as string)
}

function summaryOf (r: Record<string, unknown>, counts: RolloutCounts): RolloutSummary {
  return {
    id: String(r.id),
    operation: r.operation as RolloutOperation,
    migrations: (r.migrations as string[] | null) ?? [],
    startedBy: String(r.started_by),
    status: r.status as RolloutStatus,
    haltReason: (r.halt_reason as string | null) ?? null,
    owner: (r.owner as string | null) ?? null,
    leaseUntil: dateOrNull(r.lease_until),
    goAt: dateOrNull(r.go_at),
    maxFailures: r.max_failures === null || r.max_failures === undefined ? null : Number(r.max_failures),
    failures: Number(r.failures ?? 0),
    createdAt: new Date(r.created_at as string),
    finishedAt: dateOrNull(r.finished_at),
    counts
  }
}
