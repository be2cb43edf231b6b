import { BusyError } from '../errors.js'

/** What one database host's budget looks like now, for `app.tenancy.stats()`. */
export interface HostConnectionStats {
  /** Tenant connections open (or being opened) to the host, draining pools included. */
  connections: number
  /** The budget: `database.maxConnections`, or what was worked out from the server. */
  max: number
  /** Connection requests waiting for room. */
  waiting: number
  /** The most connections open at once since the start. */
  peak: number
}

export interface ConnectionBudgetOptions {
  /** Most connections open to one host at once (until `setMax` says otherwise for a host). */
  max: number
  /** How long a request for a permit waits before it fails with FST_TENANCY_BUSY. */
  acquireTimeoutMs: number
  /**
   * Asked to make room on a full host for a pool that holds no connection:
   * closes (at least) one idle pool there and returns true, or returns false
   * when no pool is idle. Its connections come back through `release()` as
   * they close.
   */
  reclaim: (host: string) => boolean
}

/** Who asks for a permit. */
export interface PermitRequest {
  /** True when the asking pool holds no connection yet (nothing of its own can come free for it). */
  cold: boolean
  /** False once the permit would go unused (the request it was for got a connection that came free, or gave up). */
  needed: () => boolean
}

interface Waiter {
  readonly request: PermitRequest
  grant: () => void
  timer: NodeJS.Timeout
}

interface HostState {
  open: number
  peak: number
  max: number
  readonly waiters: Waiter[]
}

/**
 * A hard cap on the tenant connections open to each database host. Every
 * physical connection a tenant pool opens takes a permit first and gives it
 * back once closed, so the count includes pools that are draining. On a full
 * host a pool with no connection of its own asks for an idle pool to be
 * closed; a pool whose connections are all busy waits instead (one of them
 * comes free sooner than a new one opens, and no other tenant loses its warm
 * connection). Permits go first come first served to requests still waiting;
 * one not granted in `acquireTimeoutMs` fails with FST_TENANCY_BUSY. It never
 * opens a connection over the cap.
 */
export class ConnectionBudget {
  private readonly options: ConnectionBudgetOptions
  private readonly hosts = new Map<string, HostState>()

  constructor (options: ConnectionBudgetOptions) {
    this.options = options
  }

  /** The budget of `host` (worked out from its server at start). */
  setMax (host: string, max: number): void {
    this.state(host).max = max
  }

  max (host: string): number {
    return this.state(host).max
  }

  /** Takes a permit for one connection to `host`, waiting for one if need be. */
  async acquire (host: string, request: PermitRequest): Promise<void> {
    const state = this.state(host)
    if (state.open < state.max) {
      state.open++
      if (state.open > state.peak) state.peak = state.open
      return
    }
    if (request.cold) this.options.reclaim(host)
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        request,
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

  /** Gives back the permit of a connection that closed (or failed to open): the first waiter that still needs one gets it. */
  release (host: string): void {
    const state = this.state(host)
    const at = state.waiters.findIndex((w) => w.request.needed())
    if (at >= 0 && state.open <= state.max) {
      const [next] = state.waiters.splice(at, 1)
      next?.grant()
      return
    }
    if (state.open > 0) state.open--
  }

  /** True when a request waits on `host` for a pool that holds no connection (an idle pool should make room). */
  coldWaiting (host: string): boolean {
    return this.hosts.get(host)?.waiters.some((w) => w.request.cold && w.request.needed()) ?? false
  }

  stats (): Record<string, HostConnectionStats> {
    const out: Record<string, HostConnectionStats> = {}
    // A waiter whose request was served by a connection that came free (or gave up) stays queued until its timer ends; it waits for nothing.
    for (const [host, s] of this.hosts) {
      out[host] = { connections: s.open, max: s.max, waiting: s.waiters.filter((w) => w.request.needed()).length, peak: s.peak }
    }
    return out
  }

  private state (host: string): HostState {
    let state = this.hosts.get(host)
    if (state === undefined) {
      state = { open: 0, peak: 0, max: this.options.max, waiters: [] }
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
