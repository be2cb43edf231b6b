import { MikroORM, PostgreSqlDriver, type EntityManager } from '@mikro-orm/postgresql'
import type { EntitySchema, MetadataStorage } from '@mikro-orm/core'
import { targetOrmOptions, type TenantTarget } from './tenant-target.js'

/** Pools open now, pools closing once their requests end, and pools opened since start. */
export interface ConnectionStats {
  open: number
  draining: number
  opened: number
}

/** One borrowed use of a tenant database; give it back with `release()` when the work ends. */
export interface TenantLease {
  readonly orm: MikroORM
  readonly em: EntityManager
  release: () => void
}

export interface TenantConnectionsOptions {
  /** Entities of the tenant databases (the metadata every pool shares). */
  entities: EntitySchema<any, any>[]
  /** Most pools kept open at once. */
  cap: number
  /** Most connections of one pool. */
  poolSize: number
  /** How long an idle connection stays open. */
  idleTimeoutMs: number
  debug?: boolean
  /** The driver class (strategy `shared` names each statement's tenant through its own). */
  driver?: typeof PostgreSqlDriver
  /** MikroORM options that point an instance at a target (default: targetOrmOptions). */
  ormOptions?: (target: TenantTarget) => Record<string, unknown>
  /** Pool ids never closed for one tenant (the pool every tenant shares). */
  pinned?: string[]
}

interface PoolEntry {
  readonly id: string
  readonly orm: MikroORM
  leases: number
  /** Evicted while in use: closes when its last lease ends. */
  draining: boolean
}

/**
 * Holds one MikroORM instance per tenant database, all sharing one discovered
 * metadata, in an LRU capped at `cap` open pools. Pools open no connection
 * until used (`min: 0`), so a cap of N with pool size S bounds the tenant
 * connections at N × S however many tenants there are. When a new pool needs
 * room, the least recently used idle pool is closed; if every pool is in use,
 * the least recently used one is marked draining and closes as soon as its
 * last request ends, so no running request loses its connection.
 */
export class TenantConnections {
  private readonly options: TenantConnectionsOptions
  /** Live pools; Map order is the recency order (first = least recently used). */
  private readonly live = new Map<string, PoolEntry>()
  private readonly draining = new Set<PoolEntry>()
  private readonly closing = new Set<Promise<void>>()
  private metadata: MetadataStorage | undefined
  private closed = false
  private opened = 0
  /** Called with each newly opened pool (resource syncing registers its subscriber here). */
  private readonly openHooks: Array<(orm: MikroORM, target: TenantTarget) => void> = []

  constructor (options: TenantConnectionsOptions) {
    this.options = options
  }

  /** Borrows the pool of a tenant target (opening it when needed) and forks an EntityManager on it. */
  lease (target: TenantTarget): TenantLease {
    if (this.closed) throw new Error('The tenant connection manager is closed.')
    const id = target.id
    let entry = this.live.get(id)
    if (entry === undefined) {
      entry = { id, orm: this.open(target), leases: 1, draining: false }
      this.live.set(id, entry)
      // The new pool is leased already, so it is never the one evicted to make room for itself.
      this.makeRoom()
    } else {
      // Move to the most recently used end.
      this.live.delete(id)
      this.live.set(id, entry)
      entry.leases++
    }
    const held = entry
    let released = false
    return {
      orm: held.orm,
      em: held.orm.em.fork({ clear: true, useContext: false }),
      release: () => {
        if (released) return
        released = true
        held.leases--
        if (held.draining && held.leases === 0) {
          this.draining.delete(held)
          this.closeEntry(held)
        }
      }
    }
  }

  /** Closes the pool of target `id` now (before its database is dropped); a pool in use is closed too. */
  async evict (id: string): Promise<void> {
    if (this.options.pinned?.includes(id) === true) return
    const entry = this.live.get(id)
    if (entry !== undefined) {
      this.live.delete(id)
      await entry.orm.close(true)
    }
    for (const draining of this.draining) {
      if (draining.id === id) {
        this.draining.delete(draining)
        await draining.orm.close(true)
      }
    }
  }

  /** Runs `hook` for every pool opened from now on. */
  onOpen (hook: (orm: MikroORM, target: TenantTarget) => void): void {
    this.openHooks.push(hook)
  }

  /** The tenant entities' metadata, discovered once (without connecting anywhere). */
  discover (): MetadataStorage {
    if (this.metadata === undefined) {
      const orm = MikroORM.initSync({ driver: PostgreSqlDriver, clientUrl: 'postgres://discovery.invalid/none', entities: this.options.entities, contextName: 'fastify-tenancy:tenant-discovery', allowGlobalContext: false })
      this.metadata = orm.getMetadata()
    }
    return this.metadata
  }

  /** Open pools, and pools still draining after eviction. */
  stats (): ConnectionStats {
    return { open: this.live.size, draining: this.draining.size, opened: this.opened }
  }

  async close (): Promise<void> {
    this.closed = true
    const all = [...this.live.values(), ...this.draining]
    this.live.clear()
    this.draining.clear()
    await Promise.allSettled([...all.map(async (e) => await e.orm.close(true)), ...this.closing])
  }

  private makeRoom (): void {
    while (this.live.size > this.options.cap) {
      let victim: PoolEntry | undefined
      for (const entry of this.live.values()) {
        if (entry.leases === 0) { victim = entry; break }
      }
      victim ??= this.live.values().next().value as PoolEntry
      this.live.delete(victim.id)
      if (victim.leases === 0) {
        this.closeEntry(victim)
      } else {
        victim.draining = true
        this.draining.add(victim)
      }
    }
  }

  private closeEntry (entry: PoolEntry): void {
    const done = entry.orm.close(true).catch(() => {}).finally(() => this.closing.delete(done))
    this.closing.add(done)
  }

  private open (target: TenantTarget): MikroORM {
    this.opened++
    const options = {
      driver: this.options.driver ?? PostgreSqlDriver,
      ...(this.options.ormOptions ?? targetOrmOptions)(target),
      entities: this.options.entities,
      // Each instance needs a name of its own, or MikroORM's RequestContext would mix them.
      contextName: `fastify-tenancy:tenant:${this.opened}`,
      pool: { min: 0, max: this.options.poolSize, idleTimeoutMillis: this.options.idleTimeoutMs },
      debug: this.options.debug ?? false,
      allowGlobalContext: false,
      // A missing database is an error, never silently created (a deleted tenant stays deleted).
      ensureDatabase: false
    }
    const orm = this.metadata === undefined ? MikroORM.initSync(options) : withSharedMetadata(new MikroORM(options), this.metadata)
    this.metadata ??= orm.getMetadata()
    for (const hook of this.openHooks) hook(orm, target)
    return orm
  }
}

/**
 * Gives a new MikroORM instance the metadata another instance already
 * discovered, skipping discovery (the costly part of `initSync`). It does what
 * `initSync` does after discovery; `createEntityManager` is private in
 * MikroORM 6, hence the cast.
 */
function withSharedMetadata (orm: MikroORM, metadata: MetadataStorage): MikroORM {
  const internals = orm as unknown as { metadata: MetadataStorage, createEntityManager: () => void, driver: { getPlatform: () => { init: (orm: MikroORM) => void } } }
  internals.metadata = metadata
  internals.createEntityManager()
  internals.driver.getPlatform().init(orm)
  return orm
}
