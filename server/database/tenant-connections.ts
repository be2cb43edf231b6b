import type { Socket } from 'node:net'
import type pg from 'pg'
import { MikroORM, PostgreSqlDriver, type EntityManager } from '@mikro-orm/postgresql'
import type { EntitySchema, EventManager, MetadataStorage } from '@mikro-orm/core'
import { targetOrmOptions, type TenantTarget } from './tenant-target.js'
import { ConnectionBudget, type HostConnectionStats } from './connection-budget.js'
import { TenantEntityManager, type RunningTenant } from './tenant-entity-manager.js'
import { tenantSocket } from './login-socket.js'
import { statementClient, type StatementSetup } from './statement-client.js'
import { tenantDialect, type RequestWait, type TenantKnexClient } from './tenant-dialect.js'
import { TenancyClosedError, TenantMismatchError } from '../errors.js'

/** One borrowed use of a tenant database; give it back with `release()` when the work ends. */
export interface TenantLease {
  readonly orm: MikroORM
  readonly em: EntityManager
  release: () => void
}

export interface TenantConnectionsOptions {
  /** Entities of the tenant databases. */
  entities: EntitySchema<any, any>[]
  /** Most pools kept open at once. */
  cap: number
  /** Most connections of one tenant's pool (strategy `database`). */
  poolSize: number
  /** Most connections open to one database host, every pool counted (draining ones too), until `setMaxConnections` says otherwise for a host. */
  maxConnections: number
  /** How long a request waits for connections, all its waits together, before FST_TENANCY_BUSY. */
  acquireTimeoutMs: number
  /** How long an idle connection stays open. */
  idleTimeoutMs: number
  debug?: boolean
  /** MikroORM options that point an instance at a target (default: targetOrmOptions). */
  ormOptions?: (target: TenantTarget) => Record<string, unknown>
  /** Pool ids never closed for one tenant (the pool every tenant shares). */
  pinned?: string[]
  /**
   * Pools that tenants share (strategies `schema` and `shared`): the setup of
   * each statement for the running tenant (statement-client.ts). Without it,
   * each pool serves one tenant's database and its statements go as they are.
   */
  setup?: () => StatementSetup | null
  /** Reset a shared pool's connection before another tenant uses it (off behind a transaction-mode pooler, which resets them itself). */
  reset?: boolean
  /** The key of the running tenant context, so an EntityManager refuses to serve another tenant. */
  running?: RunningTenant
  /** EntityManagers work only inside their tenant's context (strategy `shared`). */
  needsContext?: boolean
  /** The running request (or job, or `run()`), whose waits for connections add up to one bound; null outside one. */
  waitOf?: () => object | null
  /** The error a caller gets for a failure of a connection to `host` (connection faults become FST_TENANCY_DATABASE_UNAVAILABLE). */
  fault?: (host: string, error: Error) => Error
  /** Called when a new connection to `host` opened (a burst of faults there ended). */
  reached?: (host: string) => void
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
  /** The tenant whose pool it is (null for a pool many tenants share). */
  readonly tenant: string | null
  /** Name of the database host (its budget). */
  readonly host: string
  readonly orm: MikroORM
  /** True for a pool every schema tenant of a host shares (the schema is chosen per lease). */
  readonly shared: boolean
  leases: number
  /** Physical connections open (each holds a permit of the host's budget). */
  connections: number
  /** Evicted while in use: closes when its last lease ends. */
  draining: boolean
  /** The pool's knex client, once made (its pool says whether a request still waits for a connection). */
  client: TenantKnexClient | null
  /** The MikroORM instance serving it (another pool's after this one closed, and its again later). */
  readonly shell: Shell
  /** URL of the server's maintenance database (its PostgreSQL version is known per server). */
  readonly server: string
  /** The node-postgres Client class of its connections. */
  readonly Client: typeof pg.Client
  /** The error a caller gets for a failure of one of its connections. */
  readonly fault: (error: Error) => Error
  /** node-postgres's `stream` option for its connections. */
  readonly stream: () => Socket
}

/**
 * A MikroORM instance with its entities discovered, serving one pool at a
 * time: when its pool closes it waits for the next one, so a new pool costs
 * no discovery (MikroORM's `initSync` spends milliseconds there). Its knex
 * client is made anew for each pool, from `driverOptions` (MikroORM's public
 * option, read again on `connect()`); what the client needs to know of its
 * pool it reads through `slot`.
 */
interface Shell {
  readonly orm: MikroORM
  readonly slot: { entry: PoolEntry }
}

/**
 * Holds the pools of tenant databases: one MikroORM instance per tenant
 * database (strategy `database`) or per host (strategies `schema` and
 * `shared`), in an LRU capped at `cap` open pools. Pools open no connection
 * until used. Every connection a pool opens holds a permit of its host's
 * budget (`maxConnections`) from before it connects until its socket closes:
 * on a full host a pool with no connection of its own closes the least
 * recently used idle pool to make room, a pool whose connections are busy
 * waits for one of them, and a request that waited `acquireTimeoutMs` in all
 * fails with FST_TENANCY_BUSY. A pool evicted while in use closes once its
 * last request ends; its connections count until then.
 *
 * Everything here goes through public seams: MikroORM's `driverOptions`
 * (knex's `client` class and its `connection` and `pool` settings), knex's
 * dialect class, node-postgres's `Client` class and `stream` option.
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
  /** The waits of each running request, by request. */
  private readonly waits = new WeakMap<object, RequestWait>()
  private cap: number
  private metadata: MetadataStorage | undefined
  private closed = false
  private opened = 0
  /** Key of the most recently leased pool (the last in `live`, while it is there). */
  private newest: string | null = null
  /** Called with the events of each lease (resource syncing registers its subscriber here). */
  private readonly openHooks: Array<(events: EventManager, target: TenantTarget) => void> = []
  /** MikroORM instances whose pools closed, ready for the next pool of a tenant database. */
  private readonly shells: Shell[] = []
  private readonly dialects = new WeakMap<Shell, unknown>()

  constructor (options: TenantConnectionsOptions) {
    this.options = options
    this.cap = options.cap
    this.budget = new ConnectionBudget({ max: options.maxConnections, acquireTimeoutMs: options.acquireTimeoutMs, reclaim: (host) => this.reclaim(host) })
  }

  /** The budget of database host `host` (worked out from its server when `database.maxConnections` is not given). */
  setMaxConnections (host: string, max: number): void {
    this.budget.setMax(host, max)
  }

  /** Most pools kept open at once (worked out with the budgets when `database.poolCap` is not given). */
  setCap (cap: number): void {
    this.cap = cap
    this.makeRoom()
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
        } else if (this.budget.coldWaiting(held.host)) {
          // A request waits for a first connection to a database of this host: idle pools give theirs back.
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
      await this.shut(entry)
    }
    for (const draining of this.draining) {
      if (draining.key === id) {
        this.draining.delete(draining)
        await this.shut(draining)
      }
    }
  }

  /**
   * Forgets the pools of tenant `key` (a pool many tenants share stays): an
   * idle one closes now, one in use once its last lease ends. The next lease
   * opens a pool at the tenant's target as it is then (after a move, on its
   * new host).
   */
  retire (key: string): void {
    for (const entry of this.live.values()) {
      if (entry.tenant !== key) continue
      this.live.delete(entry.key)
      if (this.newest === entry.key) this.newest = null
      if (entry.leases === 0) {
        this.closeEntry(entry)
      } else {
        entry.draining = true
        this.draining.add(entry)
      }
    }
  }

  /** Runs `hook` with the events of every lease's EntityManager from now on (each lease has events of its own then). */
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
    await Promise.allSettled([...all.map(async (e) => { await this.shut(e) }), ...this.closing])
    this.shells.length = 0
  }

  private fork (entry: PoolEntry, target: TenantTarget): EntityManager {
    // The lease's schema (schema-qualified ORM SQL): a pool of schema tenants serves many, and a reused instance
    // may have been made for another schema (strategy shared: the shared one, or an isolated tenant's own).
    // With hooks, events of its own (a MikroORM instance serves many tenants in turn, so nothing of one is registered on it).
    const schema = target.schema ?? undefined
    const hooks = this.openHooks.length > 0
    const em = entry.orm.em.fork({
      clear: true,
      useContext: false,
      ...(schema === undefined ? {} : { schema }),
      ...(hooks ? { cloneEventManager: true } : {})
    }) as unknown as TenantEntityManager
    em.tenantKey = target.key
    em.running = this.options.running ?? null
    em.needsContext = this.options.needsContext ?? false
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
    while (this.live.size > this.cap) {
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
    const done = this.shut(entry).catch(() => {}).finally(() => this.closing.delete(done))
    this.closing.add(done)
  }

  /**
   * Closes a pool's knex client (and so its connections) and keeps its
   * MikroORM instance for the next pool of a tenant database. The driver is
   * closed, not the instance: MikroORM 6.4's `close()` checks the connection
   * with a query first, which would open one to close it.
   */
  private async shut (entry: PoolEntry): Promise<void> {
    await entry.orm.em.getDriver().close(true)
    if (!entry.shared && !this.closed && this.shells.length < this.cap) this.shells.push(entry.shell)
  }

  /** The waits so far of the running request (null outside one). */
  private waitOf (): RequestWait | null {
    const request = this.options.waitOf?.() ?? null
    if (request === null) return null
    let wait = this.waits.get(request)
    if (wait === undefined) {
      wait = { spentMs: 0 }
      this.waits.set(request, wait)
    }
    return wait
  }

  private open (target: TenantTarget): PoolEntry {
    this.opened++
    const shared = target.pool !== undefined && target.schema !== null
    const { options } = this
    const url = new URL(target.url)
    const host = target.host
    const fault = (error: Error): Error => options.fault?.(host, error) ?? error
    // A pool of a tenant's own database reuses a MikroORM instance whose pool closed, when there is one.
    const spare = shared || target.id === options.pinned?.[0] ? undefined : this.shells.pop()
    const slot: { entry: PoolEntry } = spare?.slot ?? { entry: undefined as unknown as PoolEntry }
    const shell: Shell = spare ?? { orm: undefined as unknown as MikroORM, slot }
    const entry: PoolEntry = {
      key: poolKey(target),
      tenant: shared ? null : target.key,
      host,
      orm: spare?.orm as MikroORM,
      shared,
      leases: 0,
      connections: 0,
      draining: false,
      client: null,
      shell,
      server: target.server,
      // Its connections' Client: each statement with its tenant's setup (pools tenants share), or refused in another tenant's context (a tenant's own database).
      Client: statementClient({
        setup: options.setup ?? noSetup,
        reset: options.setup !== undefined && (options.reset ?? true),
        fault,
        ...(options.setup === undefined && options.running !== undefined ? { refuse: refuseOthers(options.running, target.key) } : {})
      }),
      fault,
      stream: this.permits(() => slot.entry, decodeURIComponent(url.password))
    }
    slot.entry = entry
    if (spare !== undefined) {
      spare.orm.config.set('driverOptions', this.driverOptions(shell, target, url))
      spare.orm.em.getConnection().connect()
      return entry
    }
    const ormOptions = {
      driver: PostgreSqlDriver,
      entityManager: TenantEntityManager,
      // A pool of schema tenants names the schema per lease, not per instance.
      ...(options.ormOptions ?? targetOrmOptions)(shared ? { ...target, schema: null } : target),
      entities: options.entities,
      // An app may have no tenant entities (raw SQL only).
      discovery: { warnWhenNoEntities: false },
      // Each instance needs a name of its own, or MikroORM's RequestContext would mix them.
      contextName: `fastify-tenancy:tenant:${this.opened}`,
      pool: {
        min: 0,
        // A shared pool serves every schema tenant of its host: the host's budget is its limit.
        max: shared ? this.budget.max(host) : options.poolSize,
        idleTimeoutMillis: options.idleTimeoutMs,
        // Waiting for a connection is bounded per request (tenant-dialect.ts); this is the bound of a wait outside one.
        acquireTimeoutMillis: options.acquireTimeoutMs,
        // Opening a connection includes waiting for the budget, inside the bound above.
        createTimeoutMillis: options.acquireTimeoutMs + 30_000,
        afterCreate: (connection: unknown, done: (error: Error | null, connection: unknown) => void) => {
          const served = slot.entry
          const known = served.client?.version
          if (known !== undefined && !this.versions.has(served.server)) this.versions.set(served.server, known)
          options.reached?.(served.host)
          done(null, connection)
        }
      },
      driverOptions: this.driverOptions(shell, target, url),
      debug: options.debug ?? false,
      allowGlobalContext: false,
      // A missing database is an error, never silently created (a deleted tenant stays deleted).
      ensureDatabase: false
    }
    const orm = MikroORM.initSync(ormOptions as any)
    ;(shell as { orm: MikroORM }).orm = orm
    ;(entry as { orm: MikroORM }).orm = orm
    this.metadata ??= orm.getMetadata()
    return entry
  }

  /**
   * MikroORM's `driverOptions` for a shell serving `target`: knex's client
   * class (tenant-dialect.ts, reading its pool through the shell's slot), the
   * connection's database and credentials (over whatever the shell was first
   * made for) and its budgeted socket.
   */
  private driverOptions (shell: Shell, target: TenantTarget, url: URL): Record<string, unknown> {
    const slot = shell.slot
    const version = this.versions.get(target.server)
    return {
      client: this.dialectOf(shell),
      connection: {
        host: decodeURIComponent(url.hostname),
        port: Number(url.port === '' ? 5432 : url.port),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        database: decodeURIComponent(url.pathname.slice(1)),
        stream: () => slot.entry.stream()
      },
      acquireConnectionTimeout: this.options.acquireTimeoutMs,
      // Knowing the server's version spares knex a `select version()` on every new pool.
      ...(version === undefined ? {} : { version })
    }
  }

  /** The knex client class of a shell: what it needs of its pool, read from the pool it serves now. */
  private dialectOf (shell: Shell): unknown {
    const known = this.dialects.get(shell)
    if (known !== undefined) return known
    const slot = shell.slot
    const dialect = tenantDialect({
      get host () { return slot.entry.host },
      get Client () { return slot.entry.Client },
      acquireTimeoutMs: this.options.acquireTimeoutMs,
      waitOf: () => this.waitOf(),
      fault: (error) => slot.entry.fault(error),
      attach: (client) => { slot.entry.client = client }
    })
    this.dialects.set(shell, dialect)
    return dialect
  }

  /**
   * Each connection of the pool holds a permit of its host's budget from
   * before it connects until its socket closes, and logs in with the
   * password's SCRAM key derived once (login-socket.ts).
   */
  private permits (entryOf: () => PoolEntry, password: string): () => Socket {
    const { budget } = this
    return () => {
      // The pool this socket is for, fixed when it is made (the shell may serve another later).
      const entry = entryOf()
      return tenantSocket({
        take: async (socket) => {
          await budget.acquire(entry.host, {
            cold: entry.connections === 0,
            needed: () => !socket.destroyed && (entry.client?.pool?.numPendingAcquires() ?? 1) > 0
          })
          entry.connections++
        },
        give: () => {
          entry.connections--
          budget.release(entry.host)
        }
      }, password)
    }
  }
}

const noSetup = (): null => null

/** A tenant database's connections refuse statements sent while another tenant's context runs (a kept EntityManager's raw SQL). */
function refuseOthers (running: RunningTenant, owner: string): () => Error | null {
  return () => {
    const key = running()
    return key === null || key === owner ? null : new TenantMismatchError(owner, key)
  }
}

/** Targets sharing a pool name it in `pool`; any other target has a pool of its own. */
function poolKey (target: TenantTarget): string {
  return target.pool ?? target.id
}
