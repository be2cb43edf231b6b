import { InvalidRolloutError } from '../errors.js'
import { ROLLOUT_ORDERS, type RolloutInput, type RolloutOrder } from './rollout-types.js'

/** The lease a runner holds without renewing it, when not given. */
export const DEFAULT_LEASE_MS = 30_000
export const DEFAULT_ROLLOUT_CONCURRENCY = 4

/** A rollout's input, checked once, with its defaults. */
export interface CheckedInput {
  operation: 'migrate' | 'rollback' | 'seed'
  tenants: string[] | undefined
  skipTenants: string[]
  hosts: string[] | undefined
  statuses: string[] | undefined
  concurrency: number
  canary: number | string[] | null
  canaryWaitMs: number | null
  maxFailures: { count: number } | { percent: number } | null
  order: RolloutOrder
  startedBy: string
  leaseMs: number
}

const STATUSES = ['active', 'suspended', 'provisioning', 'failed', 'deleting']

function whole (value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new InvalidRolloutError(`${what} must be a whole number of at least ${min}, not ${JSON.stringify(value)?.slice(0, 40) ?? String(value)}.`)
  return value
}

function list (value: unknown, what: string): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) throw new InvalidRolloutError(`${what} must be a list of names, without empty ones.`)
  return [...new Set(value as string[])]
}

/** `--max-failures`: `5` or `10%`. */
export function parseMaxFailures (value: unknown): CheckedInput['maxFailures'] {
  if (value === undefined || value === null) return null
  if (typeof value === 'number') return { count: whole(value, 'maxFailures (--max-failures)', 1) }
  const text = String(value).trim()
  const percent = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(text)
  if (percent !== null) {
    const p = Number(percent[1])
    if (p <= 0 || p > 100) throw new InvalidRolloutError(`maxFailures (--max-failures) as a percentage must be more than 0% and at most 100%, not "${text.slice(0, 40)}".`)
    return { percent: p }
  }
  if (/^[0-9]+$/.test(text) && Number(text) >= 1) return { count: Number(text) }
  throw new InvalidRolloutError(`maxFailures (--max-failures) must be a whole number of at least 1 or a percentage such as 10%, not "${text.slice(0, 40)}".`)
}

/** A duration: `90`, `90s`, `500ms`, `5m`, `1h` (a bare number is seconds). */
export function parseDuration (value: string, flag: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(value.trim())
  if (m === null) throw new InvalidRolloutError(`${flag} must be a duration such as 30s, 5m or 1h, not "${value.slice(0, 40)}".`)
  const n = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number)
  if (!Number.isSafeInteger(Math.round(n)) || n > 7 * 24 * 3_600_000) throw new InvalidRolloutError(`${flag} must be at most a week, not "${value.slice(0, 40)}".`)
  return Math.round(n)
}

/** `--canary`: a count (`3`) or identifiers and keys (`acme,globex`). */
export function parseCanary (value: string): number | string[] {
  const text = value.trim()
  if (/^[0-9]+$/.test(text)) {
    if (Number(text) < 1) throw new InvalidRolloutError('canary (--canary) must be at least 1 tenant, or identifiers separated by commas.')
    return Number(text)
  }
  const names = text.split(',').map((s) => s.trim())
  if (names.some((n) => n.length === 0)) throw new InvalidRolloutError('canary (--canary) takes a number of tenants, or identifiers or keys separated by commas, without empty ones.')
  return [...new Set(names)]
}

/** Checks a rollout's input (the app API's and the CLI's); a bad value throws FST_TENANCY_INVALID_ROLLOUT. */
export function checkInput (input: RolloutInput, knownHosts: readonly string[]): CheckedInput {
  const operation = input.operation ?? 'migrate'
  if (!['migrate', 'rollback', 'seed'].includes(operation)) throw new InvalidRolloutError(`operation must be migrate, rollback or seed, not "${String(operation).slice(0, 40)}".`)
  const hosts = list(input.hosts, 'hosts')
  for (const h of hosts ?? []) if (!knownHosts.includes(h)) throw new InvalidRolloutError(`hosts (--host) names "${h.slice(0, 60)}", which is not one of database.hosts (${knownHosts.join(', ')}).`)
  const statuses = list(input.statuses, 'statuses')
  for (const s of statuses ?? []) if (!STATUSES.includes(s)) throw new InvalidRolloutError(`statuses (--status) must be among ${STATUSES.join(', ')}, not "${s.slice(0, 40)}".`)
  const order = input.order ?? 'identifier'
  if (!(ROLLOUT_ORDERS as readonly string[]).includes(order)) throw new InvalidRolloutError(`order (--order) must be one of ${ROLLOUT_ORDERS.join(', ')}, not "${String(order).slice(0, 40)}".`)
  let canary: CheckedInput['canary'] = null
  if (input.canary !== undefined && input.canary !== null) {
    canary = typeof input.canary === 'number' ? whole(input.canary, 'canary (--canary)', 1) : list(input.canary, 'canary') ?? null
    if (Array.isArray(canary) && canary.length === 0) throw new InvalidRolloutError('canary must name at least one tenant.')
  }
  const canaryWaitMs = input.canaryWaitMs === undefined || input.canaryWaitMs === null ? null : whole(input.canaryWaitMs, 'canaryWaitMs (--canary-wait, in ms)', 0)
  if (canaryWaitMs !== null && canary === null) throw new InvalidRolloutError('canaryWaitMs (--canary-wait) needs canary (--canary): it is how long the rollout waits after its canary wave.')
  return {
    operation,
    tenants: list(input.tenants, 'tenants'),
    skipTenants: list(input.skipTenants, 'skipTenants') ?? [],
    hosts,
    statuses,
    concurrency: input.concurrency === undefined ? DEFAULT_ROLLOUT_CONCURRENCY : whole(input.concurrency, 'concurrency (--concurrency)', 1),
    canary,
    canaryWaitMs,
    maxFailures: parseMaxFailures(input.maxFailures),
    order: order as RolloutOrder,
    startedBy: typeof input.startedBy === 'string' && input.startedBy.length > 0 ? input.startedBy.slice(0, 200) : 'app',
    leaseMs: input.leaseMs === undefined ? DEFAULT_LEASE_MS : whole(input.leaseMs, 'leaseMs (--lease, in ms)', 1000)
  }
}
