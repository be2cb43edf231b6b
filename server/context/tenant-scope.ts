import type { FastifyBaseLogger } from 'fastify'
import type { EntityManager } from '@mikro-orm/postgresql'
import { NoTenantContextError } from '../errors.js'
import type { Tenant } from '../tenant.js'
import type { TenantLease } from '../database/tenant-connections.js'
import type { TenantStorage } from './tenant-storage.js'

/**
 * Everything that belongs to one tenant for the length of one request, job or
 * `run()`: the tenant, its logger, its storage, its cache prefix and (lazily)
 * its EntityManager. Bootstrappers fill it in and revert it; it is the value
 * the tenant context holds, never a process-wide global.
 */
export class TenantScope<T extends Tenant = Tenant> {
  readonly tenant: T
  log: FastifyBaseLogger
  /** True when `log` is this scope's alone (a request's own child logger), so it may be tagged in place. */
  readonly ownsLog: boolean
  storage: TenantStorage | null = null
  cachePrefix: string | null = null
  private bag: Map<string | symbol, unknown> | null = null
  private leaseFactory: (() => TenantLease) | null = null
  private lease: TenantLease | null = null

  constructor (tenant: T, log: FastifyBaseLogger, ownsLog = false) {
    this.tenant = tenant
    this.log = log
    this.ownsLog = ownsLog
  }

  /** Room for the app's own bootstrappers (made on first use). */
  get values (): Map<string | symbol, unknown> {
    this.bag ??= new Map()
    return this.bag
  }

  /** The tenant's EntityManager, forked on first use from the tenant database's pool. */
  get em (): EntityManager {
    if (this.lease === null) {
      if (this.leaseFactory === null) throw new NoTenantContextError('The tenant EntityManager (the database bootstrapper is not enabled)')
      this.lease = this.leaseFactory()
    }
    return this.lease.em
  }

  /** True once the EntityManager was asked for. */
  get hasDatabase (): boolean { return this.lease !== null }

  /** Prefixes a cache key with the tenant's cache prefix. */
  cacheKey (key: string): string {
    if (this.cachePrefix === null) throw new NoTenantContextError('A tenant cache key (the cache bootstrapper is not enabled)')
    return this.cachePrefix + key
  }

  /** @internal used by the database bootstrapper */
  useDatabase (factory: () => TenantLease): void {
    this.leaseFactory = factory
  }

  /** @internal used by the database bootstrapper */
  releaseDatabase (): void {
    const lease = this.lease
    this.lease = null
    this.leaseFactory = null
    lease?.release()
  }
}
