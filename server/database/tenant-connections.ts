import { MikroORM, PostgreSqlDriver, type EntityManager } from '@mikro-orm/postgresql'
import type { EntitySchema, EventManager, MetadataStorage } from '@mikro-orm/core'
import { schemaSettings, targetOrmOptions, type TenantTarget } from './tenant-target.js'
import { ConnectionBudget, busyError, type HostConnectionStats } from './connection-budget.js'
import { TenantEntityManager } from './tenant-entity-manager.js'
import { TenancyClosedError } from '../errors.js'

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
  /** Most connections of one tenant's pool (strategy `database`). */
  poolSize: number
  /** Most connections open to one database host, every pool counted (draining ones too). */
  maxConnections: number
  /** How long a request waits for a connection before FST_TENANCY_BUSY. */
  acquireTimeoutMs: number
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

/** Pools, and the connections of each host, for `app.tenancy.stats()`. */
export interface ConnectionStats {
  /** Pools open in the LRU. */
  open: number
  /** Pools evicted while in use, closing when their last request ends. */
  draining: number
  /** Pools opened since the start. */
  opened: number
  /** Per database host: connections open, the budget, requests waiting, the peak. */
  hosts: Record<string, HostConnectionStats>
}

interface PoolEntry {
  readonly key: string
  /** Name of the database host (its budget). */
  readonly host: string
  readonly orm: MikroORM
  /** True for a pool every schema tenant of a host shares (the schema is chosen per lease). */
  readonly shared: boolean
  leases: number
  /** Physical connections open, or being opened. */
  connections: number
  /** Evicted while in use: closes when its last lease ends. */
  draining: boolean
}

/** The part of knex's client the budget hooks into. */
interface KnexClient {
  version?: string
  pool?: { acquire: () => { promise: Promise<unknown> } }
  acquireRawConnection: () => Promise<unknown>
  destroyRawConnection: (connection: unknown) => Promise<void>
  acquireConnection: () => Promise<unknown>
}

/**
 * Holds the pools of tenant databases: one MikroORM instance per tenant
 * database (strategy `database`) or per host (strategy `schema`), all sharing
 * one discovered metadata, in an LRU capped at `cap` open pools. Pools open
 * no connection until used. Every connection a pool opens counts against its
 * host's budget (`maxConnections`): on a full host the least recently used
 * idle pool is closed to make room, and a request that still finds none in
 * `acquireTimeoutMs` fails with FST_TENANCY_BUSY. A pool evicted while in use
 * closes once its last request ends; its connections count until then.
 */
export class TenantConnections {
  private readonly options: TenantConnectionsOptions
  /** Live pools; Map order is the recency order (first = least recently used). */
  private readonly live = new Map<string, PoolEntry>()
  private readonly draining = new Set<PoolEntry>()
  private readonly closing = new Set<Promise<void>>()
  private readonly budget: ConnectionBudget
  /** PostgreSQL version of each server, so a new pool skips knex's `select version()`. */
  private readonly versions = new Map<string, string>()
  private metadata: MetadataStorage | undefined
  private closed = false
  private opened = 0
  /** Key of the most recently leased pool (the last in `live`, while it is there). */
  private newest: string | null = null
  /** Called with the events of each new pool, or of each lease of a shared pool (resource syncing registers its subscriber here). */
  private readonly openHooks: Array<(events: EventManager, target: TenantTarget) => void> = []

  constructor (options: TenantConnectionsOptions) {
    this.options = options
    this.budget = new ConnectionBudget({ max: options.maxConnections, acquireTimeoutMs: options.acquireTimeoutMs, reclaim: (host) => this.reclaim(host) })
  }

  /** Borrows the pool of a tenant target (opening it when needed) and forks an EntityManager on it. */
  lease (target: TenantTarget): TenantLease {
    if (this.closed) throw new TenancyClosedError()
    const key = poolKey(target)
    let entry = this.live.get(key)
    if (entry === undefined) {
      entry = this.open(target)
      entry.leases = 1
      this.live.set(key, entry)
      // The new pool is leased already, so it is never the one evicted to make room for itself.
      this.makeRoom()
    } else {
      // Move to the most recently used end (a tenant served again and again is there already).
      if (key !== this.newest) {
        this.live.delete(key)
        this.live.set(key, entry)
      }
      entry.leases++
    }
    this.newest = key
    const held = entry
    const em = this.fork(held, target)
    let released = false
    return {
      orm: held.orm,
      em,
      // Bound on purpose: callers pass `release` on by itself.
      release: () => {
        if (released) return
        released = true
        held.leases--
        if (held.leases > 0) return
        if (held.draining) {
          this.draining.delete(held)
          this.closeEntry(held)
        } else if (this.budget.waiting(held.host) > 0) {
          // Someone waits for a connection to this host: idle pools give theirs back.
          this.reclaim(held.host)
        }
      }
    }
  }

  /** Closes the pool of target `id` now (before its database is dropped); a pool in use is closed too. A shared (schema) pool stays. */
  async evict (id: string): Promise<void> {
    if (this.options.pinned?.includes(id) === true) return
    const entry = this.live.get(id)
    if (entry !== undefined) {
      this.live.delete(id)
      await entry.orm.close(true)
    }
    for (const draining of this.draining) {
      if (draining.key === id) {
        this.draining.delete(draining)
        await draining.orm.close(true)
      }
    }
  }

  /** Runs `hook` with the events of every pool opened from now on (of every lease, for a pool shared by schema tenants). */
  onOpen (hook: (events: EventManager, target: TenantTarget) => void): void {
    this.openHooks.push(hook)
  }

  /** The tenant entities' metadata, discovered once (without connecting anywhere). */
  discover (): MetadataStorage {
    if (this.metadata === undefined) {
      const orm = MikroORM.initSync({ driver: PostgreSqlDriver, clientUrl: 'postgres://discovery.invalid/none', entities: this.options.entities, discovery: { warnWhenNoEntities: false }, contextName: 'fastify-tenancy:tenant-discovery', allowGlobalContext: false })
      this.metadata = orm.getMetadata()
    }
    return this.metadata
  }

  /** Open pools, pools still draining after eviction, and each host's connections. */
  stats (): ConnectionStats {
    return { open: this.live.size, draining: this.draining.size, opened: this.opened, hosts: this.budget.stats() }
  }

  async close (): Promise<void> {
    this.closed = true
    const all = [...this.live.values(), ...this.draining]
    this.live.clear()
    this.draining.clear()
    await Promise.allSettled([...all.map(async (e) => await e.orm.close(true)), ...this.closing])
  }

  private fork (entry: PoolEntry, target: TenantTarget): EntityManager {
    if (!entry.shared) {
      const em = entry.orm.em.fork({ clear: true, useContext: false }) as unknown as TenantEntityManager
      em.tenantKey = target.key
      return em
    }
    // A shared pool: the lease's own schema (schema-qualified ORM SQL), its
    // search_path in front of each raw statement, and its own events.
    const schema = target.schema as string
    const hooks = this.openHooks.length > 0
    const em = entry.orm.em.fork({ clear: true, useContext: false, schema, cloneEventManager: hooks }) as unknown as TenantEntityManager
    em.tenantKey = target.key
    em.useStatementSettings(schemaSettings(schema))
    if (hooks) for (const hook of this.openHooks) hook(em.getEventManager(), target)
    return em
  }

  /** Closes the least recently used idle pool of `host` that holds connections; false when there is none. */
  private reclaim (host: string): boolean {
    for (const entry of this.live.values()) {
      if (entry.host === host && entry.leases === 0 && entry.connections > 0) {
        this.live.delete(entry.key)
        this.closeEntry(entry)
        return true
      }
    }
    return false
  }

  private makeRoom (): void {
    while (this.live.size > this.options.cap) {
      let victim: PoolEntry | undefined
      for (const entry of this.live.values()) {
        if (entry.leases === 0) { victim = entry; break }
      }
      victim ??= this.live.values().next().value as PoolEntry
      this.live.delete(victim.key)
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

  private open (target: TenantTarget): PoolEntry {
    this.opened++
    const shared = target.pool !== undefined && target.schema !== null
    const version = this.versions.get(target.server)
    const options = {
      driver: this.options.driver ?? PostgreSqlDriver,
      entityManager: TenantEntityManager,
      // A pool of schema tenants names the schema per lease, not per instance.
      ...(this.options.ormOptions ?? targetOrmOptions)(shared ? { ...target, schema: null } : target),
      entities: this.options.entities,
      // An app may have no tenant entities (raw SQL only).
      discovery: { warnWhenNoEntities: false },
      // Each instance needs a name of its own, or MikroORM's RequestContext would mix them.
      contextName: `fastify-tenancy:tenant:${this.opened}`,
      pool: {
        min: 0,
        // A shared pool serves every schema tenant of its host: the host's budget is its limit.
        max: shared ? this.options.maxConnections : this.options.poolSize,
        idleTimeoutMillis: this.options.idleTimeoutMs,
        acquireTimeoutMillis: this.options.acquireTimeoutMs,
        // Opening a connection includes waiting for the budget; that wait has its own bound.
        createTimeoutMillis: this.options.acquireTimeoutMs + 30_000
      },
      // Knowing the server's version spares knex a `select version()` on every new pool.
      driverOptions: { acquireConnectionTimeout: this.options.acquireTimeoutMs, ...(version === undefined ? {} : { version }) },
      debug: this.options.debug ?? false,
      allowGlobalContext: false,
      // A missing database is an error, never silently created (a deleted tenant stays deleted).
      ensureDatabase: false
    }
    const orm = this.metadata === undefined ? MikroORM.initSync(options) : withSharedMetadata(new MikroORM(options), this.metadata)
    this.metadata ??= orm.getMetadata()
    const entry: PoolEntry = { key: poolKey(target), host: target.host, orm, shared, leases: 0, connections: 0, draining: false }
    this.countConnections(entry, target.server)
    if (!shared) for (const hook of this.openHooks) hook(orm.em.getEventManager(), target)
    return entry
  }

  /**
   * Every physical connection of the pool takes a permit from its host's
   * budget before it opens and gives it back once closed. Knex's own wait for
   * a pool at its size ends in FST_TENANCY_BUSY too.
   */
  private countConnections (entry: PoolEntry, server: string): void {
    const client = (entry.orm.em.getConnection() as unknown as { getKnex: () => { client: KnexClient } }).getKnex().client
    const { budget, versions } = this
    const acquireRaw = client.acquireRawConnection.bind(client)
    const destroyRaw = client.destroyRawConnection.bind(client)
    const acquire = client.acquireConnection.bind(client)
    const timeout = this.options.acquireTimeoutMs
    // tarn's TimeoutError (knex would turn it into a KnexTimeoutError) sets no `name` of its own.
    const busy = (error: Error): never => {
      throw error?.constructor?.name === 'TimeoutError' ? busyError(entry.host, timeout) : error
    }
    client.acquireRawConnection = async () => {
      await budget.acquire(entry.host)
      entry.connections++
      try {
        const connection = await acquireRaw()
        if (client.version !== undefined && !versions.has(server)) versions.set(server, client.version)
        return connection
      } catch (error) {
        entry.connections--
        budget.release(entry.host)
        throw error
      }
    }
    client.destroyRawConnection = async (connection) => {
      try {
        await destroyRaw(connection)
      } finally {
        entry.connections--
        budget.release(entry.host)
      }
    }
    // Every query passes here, so this is knex's own acquireConnection with
    // less on top: tarn's promise and one rejection handler, where knex's
    // async function plus a wrapper made three promises a query (each one
    // visited by AsyncLocalStorage's hooks). A wait for a pool at its size that
    // runs out is FST_TENANCY_BUSY, like a wait for the host's budget.
    client.acquireConnection = () => {
      if (client.pool == null) return acquire()
      return client.pool.acquire().promise.then(undefined, busy)
    }
  }
}

/** Targets sharing a pool name it in `pool`; any other target has a pool of its own. */
function poolKey (target: TenantTarget): string {
  return target.pool ?? target.id
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
