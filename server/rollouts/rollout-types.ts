import type { TenantResult } from '../lifecycle/tenant-migrations.js'

export type RolloutOperation = 'migrate' | 'rollback' | 'seed'
/** running; waiting for a go after the canary wave; halted (error budget, canary failure, or by hand); done; failed (finished with failed tenants). */
export type RolloutStatus = 'running' | 'waiting' | 'halted' | 'done' | 'failed'
export type RolloutTenantStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped'

/** The tenant fields a rollout can be ordered by (`cluster` groups a Tenant Cluster's members together). */
export const ROLLOUT_ORDERS = ['identifier', 'name', 'created', 'host', 'cluster', 'status', 'key'] as const
export type RolloutOrder = typeof ROLLOUT_ORDERS[number]

/** What `app.tenancy.rollouts.start` takes. */
export interface RolloutInput {
  /** migrate (default), rollback or seed. */
  operation?: RolloutOperation
  /** Identifiers or keys of the tenants to work on (default: every active or suspended tenant). */
  tenants?: readonly string[]
  /** Identifiers or keys to leave out. */
  skipTenants?: readonly string[]
  /** Only tenants on these database hosts (names from `database.hosts`). */
  hosts?: readonly string[]
  /** Only tenants with these statuses (default: active and suspended, or every status when `tenants` names them). */
  statuses?: readonly string[]
  /** How many tenants at once on each database host (default 4). */
  concurrency?: number
  /** A first wave: the first n tenants in order, or these identifiers or keys; the rollout waits for a go after it. */
  canary?: number | readonly string[]
  /** After a successful canary wave, go on by itself after this many milliseconds (default: wait for `resume`). */
  canaryWaitMs?: number | null
  /** Halt when this many tenants failed: a number, or a percentage of the tenants to run as `'10%'`. */
  maxFailures?: number | string | null
  /** The order tenants run in (default identifier). */
  order?: RolloutOrder
  /** Who started it (an admin's email, a CLI user@host); shown in the ledger. */
  startedBy?: string
  /** How long the runner's lease lasts without renewal (default 30 s): another instance takes over after it. */
  leaseMs?: number
}

export type RolloutCounts = Record<RolloutTenantStatus, number>

/** A rollout as listed. */
export interface RolloutSummary {
  id: string
  operation: RolloutOperation
  /** The tenant migrations it brings tenants to (migrate), or knew of (rollback, seed). */
  migrations: string[]
  startedBy: string
  status: RolloutStatus
  /** Why it halted (the error budget, a failed canary, halted by hand), or null. */
  haltReason: string | null
  /** The instance running it, while its lease holds. */
  owner: string | null
  leaseUntil: Date | null
  /** Waiting after its canary: when it goes on by itself, or null when it waits for a go. */
  goAt: Date | null
  maxFailures: number | null
  failures: number
  createdAt: Date
  finishedAt: Date | null
  counts: RolloutCounts
}

/** One rollout in full: its options, its waves with their counts, and its failed tenants with their reasons. */
export interface Rollout extends RolloutSummary {
  options: Record<string, unknown>
  waves: Array<{ wave: number, name: 'canary' | 'rollout', counts: RolloutCounts }>
  failed: Array<{ key: string, identifier: string, wave: number, error: string }>
}

/** A tenant's outcome in a rollout, as it finishes. */
export type RolloutTenantResult = TenantResult & { wave: number, skipped?: boolean }

export interface RunOptions {
  /** Called as each tenant finishes (and once per tenant skipped at the start). */
  onResult?: (result: RolloutTenantResult) => void
  /** Called when a wave begins, with its number and size. */
  onWave?: (wave: { wave: number, name: 'canary' | 'rollout', total: number, done: number }) => void
}

/** `app.tenancy.rollouts`: migrate, rollback or seed over many tenants, recorded so a crash resumes where it stopped. */
export interface RolloutsApi {
  /** Records a new rollout (its tenants pending, those already up to date skipped) and returns it; `run` runs it. */
  start: (input?: RolloutInput, options?: Pick<RunOptions, 'onResult'>) => Promise<Rollout>
  /** Runs a rollout until it is done, failed, halted or waits after its canary; resolves with it as it then is. */
  run: (id: string, options?: RunOptions) => Promise<Rollout>
  /** Gives the go to a waiting rollout, continues a halted one, or takes over one whose runner died; then runs it like `run`. */
  resume: (id: string, options?: RunOptions) => Promise<Rollout>
  /** Halts a running or waiting rollout: its runner finishes the tenants in flight and starts no more. */
  halt: (id: string, reason?: string) => Promise<Rollout>
  /** The rollouts, newest first, a page at a time (page 1 first). */
  list: (page?: { page?: number, perPage?: number }) => Promise<{ rollouts: RolloutSummary[], total: number }>
  /** One rollout with its waves and failures; FST_TENANCY_ROLLOUT_NOT_FOUND when no rollout has the id. */
  get: (id: string) => Promise<Rollout>
}
