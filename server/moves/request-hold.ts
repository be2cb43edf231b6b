import type { Tenant } from '../tenant.js'
import type { TenantChange } from '../providers/invalidation.js'
import { TenantMovingError } from '../errors.js'

export interface RequestHoldOptions {
  /** The tenant as the central database has it now (not cached). */
  find: (key: string) => Promise<Tenant | null>
  /** How long a held request waits before 503 FST_TENANCY_MOVING (`database.acquireTimeoutMs`). */
  waitMs: number
  /** How often a held request's tenant is read again when no change notice arrives (an instance that does not listen). */
  pollMs?: number
  /**
   * Called when the last request of a tenant that changed while they ran has
   * ended: a request that began just before it heard of the change may have
   * opened a pool to the tenant's old host, which must not stay open (a move's
   * fence waits for it).
   */
  onSettled?: (key: string) => void
}

/**
 * Holds a moving tenant's requests on this instance. A move marks the
 * tenant's row held (`heldAt`); its change notice reaches every instance,
 * whose requests for the tenant then wait here, each up to `waitMs`, until
 * the row is released (the switch, or an undone move), and go on with the
 * tenant as it is then (on its new host). It also counts the requests in
 * flight per tenant, so a move knows when this instance's have ended.
 */
export class RequestHold {
  private readonly options: RequestHoldOptions
  private readonly wakers = new Map<string, Set<() => void>>()
  /** Bumped by every change of the tenant: a change that came while a lookup ran is not missed. */
  private readonly versions = new Map<string, number>()
  private readonly lookups = new Map<string, Promise<Tenant | null>>()
  private readonly inFlight = new Map<string, number>()
  private readonly idleWaiters = new Map<string, Set<() => void>>()
  /** Tenants that changed while requests of theirs were in flight. */
  private readonly changedWhileBusy = new Set<string>()

  constructor (options: RequestHoldOptions) {
    this.options = options
  }

  /** True while a move holds the tenant's requests. */
  static held (tenant: Tenant): boolean {
    return tenant.heldAt != null
  }

  /** A change of these tenants came (from this instance or a notice): held requests look again. */
  changed (change: TenantChange): void {
    for (const key of change.keys) {
      if (this.running(key) > 0) this.changedWhileBusy.add(key)
      if (this.versions.has(key)) this.versions.set(key, (this.versions.get(key) ?? 0) + 1)
      const wake = this.wakers.get(key)
      if (wake !== undefined) for (const fn of [...wake]) fn()
    }
  }

  /**
   * Waits until the tenant is no longer held and resolves with it as it is
   * then (null when it is gone meanwhile); rejects with FST_TENANCY_MOVING
   * (with Retry-After) after `waitMs`.
   */
  async wait (tenant: Tenant): Promise<Tenant | null> {
    const key = tenant.key
    const deadline = Date.now() + this.options.waitMs
    if (!this.versions.has(key)) this.versions.set(key, 0)
    let current: Tenant | null = tenant
    try {
      while (current !== null && RequestHold.held(current)) {
        const left = deadline - Date.now()
        if (left <= 0) throw movingError(tenant.identifier, this.options.waitMs)
        const version = this.versions.get(key) ?? 0
        await this.nextChange(key, version, Math.min(left, this.options.pollMs ?? 250))
        current = await this.lookup(key)
      }
      return current
    } finally {
      if (this.wakers.get(key) === undefined) this.versions.delete(key)
    }
  }

  /** One lookup per tenant at a time, however many requests wait for it. */
  private async lookup (key: string): Promise<Tenant | null> {
    let pending = this.lookups.get(key)
    if (pending === undefined) {
      pending = this.options.find(key).finally(() => this.lookups.delete(key))
      this.lookups.set(key, pending)
    }
    return await pending
  }

  private async nextChange (key: string, version: number, ms: number): Promise<void> {
    if ((this.versions.get(key) ?? 0) !== version) return
    await new Promise<void>((resolve) => {
      let set = this.wakers.get(key)
      if (set === undefined) this.wakers.set(key, set = new Set())
      const done = (): void => {
        clearTimeout(timer)
        set?.delete(done)
        if (set?.size === 0) this.wakers.delete(key)
        resolve()
      }
      const timer = setTimeout(done, ms)
      set.add(done)
    })
  }

  /** A request of the tenant began on this instance. */
  entered (key: string): void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1)
  }

  /** A request of the tenant ended on this instance. */
  left (key: string): void {
    const n = (this.inFlight.get(key) ?? 1) - 1
    if (n > 0) {
      this.inFlight.set(key, n)
      return
    }
    this.inFlight.delete(key)
    if (this.changedWhileBusy.delete(key)) this.options.onSettled?.(key)
    const waiting = this.idleWaiters.get(key)
    if (waiting !== undefined) {
      this.idleWaiters.delete(key)
      for (const fn of waiting) fn()
    }
  }

  /** Requests of the tenant in flight on this instance. */
  running (key: string): number {
    return this.inFlight.get(key) ?? 0
  }

  /** Resolves when no request of the tenant is in flight on this instance, or after `ms` (true when idle). */
  async idle (key: string, ms: number): Promise<boolean> {
    if (this.running(key) === 0) return true
    return await new Promise<boolean>((resolve) => {
      let set = this.idleWaiters.get(key)
      if (set === undefined) this.idleWaiters.set(key, set = new Set())
      const done = (): void => { clearTimeout(timer); resolve(true) }
      const timer = setTimeout(() => { set?.delete(done); resolve(this.running(key) === 0) }, ms)
      set.add(done)
    })
  }
}

/** FST_TENANCY_MOVING with a Retry-After of the wait that just ran out (at least a second). */
export function movingError (identifier: string, waitMs: number): Error {
  const error = new TenantMovingError(identifier) as Error & { headers?: Record<string, string> }
  error.headers = { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) }
  return error
}
