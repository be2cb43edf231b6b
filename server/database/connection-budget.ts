import { BusyError } from '../errors.js'

/** What one database host's budget looks like now, for `app.tenancy.stats()`. */
export interface HostConnectionStats {
  /** Tenant connections open (or being opened) to the host, draining pools included. */
  connections: number
  /** The budget: `database.maxConnections`. */
  max: number
  /** Connection requests waiting for room. */
  waiting: number
  /** The most connections open at once since the start. */
  peak: number
}

export interface ConnectionBudgetOptions {
  /** Most connections open to one host at once. */
  max: number
  /** How long a request for a connection waits before it fails with FST_TENANCY_BUSY. */
  acquireTimeoutMs: number
  /**
   * Asked to make room on a full host: closes (at least) one idle pool there
   * and returns true, or returns false when no pool is idle. Its connections
   * come back through `release()` as they close.
   */
  reclaim: (host: string) => boolean
}

interface Waiter {
  grant: () => void
  timer: NodeJS.Timeout
}

interface HostState {
  open: number
  peak: number
  readonly waiters: Waiter[]
}

/**
 * A hard cap on the tenant connections open to each database host. Every
 * physical connection a tenant pool opens takes a permit first and gives it
 * back once closed, so the count includes pools that are draining. A request
 * for a permit on a full host first asks for an idle pool to be closed, then
 * waits in line (first come, first served) and fails with FST_TENANCY_BUSY
 * after `acquireTimeoutMs`; it never opens a connection over the cap.
 */
export class ConnectionBudget {
  private readonly options: ConnectionBudgetOptions
  private readonly hosts = new Map<string, HostState>()

  constructor (options: ConnectionBudgetOptions) {
    this.options = options
  }

  /** Takes a permit for one connection to `host`, waiting for one if need be. */
  async acquire (host: string): Promise<void> {
    const state = this.state(host)
    if (state.open < this.options.max) {
      state.open++
      if (state.open > state.peak) state.peak = state.open
      return
    }
    this.options.reclaim(host)
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => { clearTimeout(waiter.timer); resolve() },
        timer: setTimeout(() => {
          const at = state.waiters.indexOf(waiter)
          if (at >= 0) state.waiters.splice(at, 1)
          reject(busyError(host, this.options.acquireTimeoutMs))
        }, this.options.acquireTimeoutMs)
      }
      state.waiters.push(waiter)
    })
  }

  /** Gives back the permit of a connection that closed (or failed to open): the first waiter gets it. */
  release (host: string): void {
    const state = this.state(host)
    const next = state.waiters.shift()
    if (next !== undefined) {
      next.grant()
      return
    }
    if (state.open > 0) state.open--
  }

  /** How many requests wait for a connection to `host`. */
  waiting (host: string): number {
    return this.hosts.get(host)?.waiters.length ?? 0
  }

  stats (): Record<string, HostConnectionStats> {
    const out: Record<string, HostConnectionStats> = {}
    for (const [host, s] of this.hosts) out[host] = { connections: s.open, max: this.options.max, waiting: s.waiters.length, peak: s.peak }
    return out
  }

  private state (host: string): HostState {
    let state = this.hosts.get(host)
    if (state === undefined) {
      state = { open: 0, peak: 0, waiters: [] }
      this.hosts.set(host, state)
    }
    return state
  }
}

/** FST_TENANCY_BUSY with a Retry-After of the wait that just ran out (at least a second). */
export function busyError (host: string, acquireTimeoutMs: number): Error {
  const error = new BusyError(host) as Error & { headers?: Record<string, string> }
  error.headers = { 'retry-after': String(Math.max(1, Math.ceil(acquireTimeoutMs / 1000))) }
  return error
}
