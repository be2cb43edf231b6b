import type { FastifyBaseLogger } from 'fastify'
import type { Tenant, TenantIsolation } from '../tenant.js'
import type { TenantLocker } from '../database/advisory-locks.js'
import type { DatabaseStrategy } from '../database/strategy.js'
import { ownerUrlOf, type TenantTarget } from '../database/tenant-target.js'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TenantChange } from '../providers/invalidation.js'
import { databaseUrl } from '../database/names.js'
import { withServer } from '../database/tenant-database.js'
import { InvalidMoveError, MoveInProgressError, MoveUnavailableError, TenantNotFoundError } from '../errors.js'
import type { MoveRecord, MoveStep, MoveStore } from './move-store.js'
import type { RequestHold } from './request-hold.js'
import { caughtUp, dropSlot, publish, reachProblem, replicationName, replicationProblems, rowFilterProblems, subscribe, unpublish, unsubscribe, waitCaughtUp, waitCopied, type ReplicaSide } from './replication.js'
import { flushedPosition, lowerFence, prepareFence } from './source-fence.js'
import { openSwitchLinks, type SwitchLinks } from './switch-links.js'
import { lowerSchemaFence, prepareSchemaFence } from './schema-fence.js'
import { lowerRowFence, prepareRowFence } from './row-fence.js'
import { readSequences, writeSequences } from './sequences.js'
import { copyTables } from './copy-tables.js'
import { checkVersion, executedMigrations, makeTargetAt } from './target-schema.js'
import { createDatabase } from '../database/tenant-database.js'
import type { TenantMigrator } from '../database/tenant-migrator.js'

/** The steps of each kind of move after `started`, in order. */
const ONLINE: readonly MoveStep[] = ['target', 'published', 'subscribed', 'copied', 'held', 'fenced', 'caught-up', 'sequences', 'switched', 'done']
// The target's schema is made before the hold (migrations cannot run meanwhile: the move holds the tenant's lock).
const OFFLINE: readonly MoveStep[] = ['target', 'held', 'fenced', 'copied', 'sequences', 'switched', 'done']

export interface MoveSettings {
  /** How long a moved tenant's source database is kept before a sweep drops it, in ms. */
  keepSourceMs: number
  /** How long the switch waits for in-flight requests (on every instance) before it ends their connections, in ms. */
  drainMs: number
  /** How long copying the rows may take, in ms. */
  copyTimeoutMs: number
  /** How long the target may take to catch up with the source, in ms. */
  catchUpTimeoutMs: number
}

export interface MoverParts {
  /** The tenant migrations (ours and the app's): a target is made at the source's version. */
  migrator: Pick<TenantMigrator, 'names' | 'up'>
  store: MoveStore
  lock: TenantLocker
  /** A tenant by key, from the central database (not cached). */
  find: (key: string) => Promise<Tenant | null>
  strategy: Pick<DatabaseStrategy, 'kind' | 'target' | 'exists' | 'create' | 'drop'>
  hosts: Record<string, string>
  defaultHost: string
  /** How a target server reaches each host for replication (default: `hosts`). */
  replicationUrls: Record<string, string>
  connections: Pick<TenantConnections, 'retire'>
  forget: (change: TenantChange) => void
  hold: Pick<RequestHold, 'idle'>
  settings: MoveSettings
  log: FastifyBaseLogger
  /**
   * Strategy `shared`: readies an isolated database for a tenant's rows at
   * the shared tables' migrations (`executed`); null in the other strategies.
   */
  isolation: Isolation | null
}

/** What moves in and out of the shared tables need (strategy `shared`). */
export interface Isolation {
  prepare: (target: TenantTarget, executed: readonly string[]) => Promise<void>
  /** The migrations the shared tables have run. */
  sharedExecuted: () => Promise<string[]>
}

export interface MoveOptions {
  /** The database host to move to, a name from `database.hosts`. */
  host: string
  /**
   * Strategy `shared`: where the tenant's rows go on that host: `'database'`
   * (a database of its own: an isolate), null (the shared tables: a
   * consolidate). Left out: where they are now.
   */
  isolation?: TenantIsolation | null
  /** Copy under a hold instead of replicating (no logical replication needed; requests wait, then get 503, while the rows are copied). */
  offline?: boolean
  /** Called after each step is recorded (progress; tests end the process at a chosen step). */
  onStep?: (step: MoveStep, move: MoveRecord) => void | Promise<void>
}

/**
 * Where and how an isolate goes: `into` a database of its own (default) on
 * `host` (default: the default host), or a schema of its own in the shared
 * tables' database (offline only); and a move's `offline` and `onStep`.
 */
export type IsolateOptions = Omit<MoveOptions, 'host' | 'isolation'> & { host?: string, into?: TenantIsolation }

/**
 * Moves a tenant's database (or schema) to another database host, under the
 * tenant's lifecycle lock, one recorded step at a time (see docs/operations.md, "Moving a
 * tenant"). Online: logical replication copies the rows and streams changes,
 * and requests are held only for the switch. Offline: requests are held for
 * the whole copy. A move cut short is finished by `move` again, or undone by
 * `abort`; until the switch the source serves.
 */
export class TenantMover {
  constructor (private readonly parts: MoverParts) {}

  async move (tenant: Pick<Tenant, 'key'>, options: MoveOptions): Promise<MoveRecord> {
    return await this.parts.lock(tenant.key, async () => {
      const current = await this.mustFind(tenant.key)
      let move = await this.parts.store.running(current.key)
      const toIsolation = options.isolation === undefined ? (move?.toIsolation ?? current.isolation ?? null) : options.isolation
      if (move !== null && (move.toHost !== options.host || move.toIsolation !== toIsolation)) throw new MoveInProgressError(current.identifier, placeName(move.toHost, move.toIsolation, this.parts.strategy.kind === 'shared'))
      move ??= await this.begin(current, options)
      return await this.drive(current, move, options.onStep)
    })
  }

  /**
   * Strategy `shared`: moves the tenant's rows out of the shared tables into a
   * database of its own on `host` (default: the default host), with the same
   * steps, hold and guarantees as a move. Called again after a crash, it
   * finishes; `abort` undoes it before the switch.
   */
  async isolate (tenant: Pick<Tenant, 'key'>, options: IsolateOptions = {}): Promise<MoveRecord> {
    const { into = 'database', ...rest } = options
    if (into !== 'database' && into !== 'schema') throw new InvalidMoveError(tenant.key, `it can be isolated into a database or a schema, not "${String(into).slice(0, 40)}"`)
    if (into === 'schema' && options.host !== undefined && options.host !== this.parts.defaultHost) {
      throw new InvalidMoveError(tenant.key, 'a schema of its own is made in the shared tables\' database, so it takes no host; isolate it into a database to choose one')
    }
    return await this.move(tenant, { ...rest, host: options.host ?? this.parts.defaultHost, isolation: into })
  }

  /** Strategy `shared`: moves an isolated tenant's rows back into the shared tables (its database is kept, then dropped). */
  async consolidate (tenant: Pick<Tenant, 'key'>, options: Omit<IsolateOptions, 'host'> = {}): Promise<MoveRecord> {
    return await this.move(tenant, { ...options, host: this.parts.defaultHost, isolation: null })
  }

  /** Undoes a move that has not switched yet: the source serves as before, the target is dropped. */
  async abort (tenant: Pick<Tenant, 'key'>): Promise<MoveRecord> {
    return await this.parts.lock(tenant.key, async () => await this.abortLocked(tenant.key))
  }

  /** Undoes the tenant's unfinished move, if any; for a caller already holding its lock (delete). */
  async abortLocked (key: string, quiet = false): Promise<MoveRecord> {
    const { store } = this.parts
    const current = await this.parts.find(key)
    const identifier = current?.identifier ?? key
    const move = await store.running(key)
    if (move === null) throw new InvalidMoveError(identifier, 'no move of it is under way')
    if (move.step === 'switched') {
      if (quiet) return move
      throw new InvalidMoveError(identifier, `its move has switched to ${placeName(move.toHost, move.toIsolation, this.parts.strategy.kind === 'shared')} already and cannot be undone; finish it with ${finishCommand(identifier, move)} (its data is there now), then move it back if you want`)
    }
    const { source, target, name } = this.sides(key, move)
    if (move.mode === 'online') {
      await unsubscribe(this.replica(target), name)
      await dropSlot(source.server, name, this.parts.settings.drainMs + 10_000)
    }
    await this.lowerFenceOf(source)
    await store.hold(key, false)
    this.changed(key)
    if (move.mode === 'online') await unpublish(this.replica(source), name)
    const now = await store.placementOf(key)
    const there = now !== undefined && (now.host ?? this.parts.defaultHost) === move.toHost && now.isolation === move.toIsolation
    // The target's copy goes, unless the tenant lives there (never before the switch): the shared tables hold only its partial rows.
    if (!there && this.inSharedRows(target)) {
      // A consolidate undone: its partial rows go, and with them any rows an earlier isolate kept there (fenced, never served again).
      await this.dropKept(target)
      for (const kept of await store.keptInShared(key)) await store.sourceDropped(kept.id)
    } else if (!there && await this.parts.strategy.exists(target)) {
      await this.parts.strategy.drop(target)
    }
    await store.finish(move.id, 'aborted')
    return { ...move, state: 'aborted' }
  }

  /** The tenant's latest move (running, done or aborted), or null. */
  async status (tenant: Pick<Tenant, 'key'>): Promise<MoveRecord | null> {
    return (await this.parts.store.history(tenant.key, 1))[0] ?? null
  }

  /** The tenant's moves, newest first. */
  async history (tenant: Pick<Tenant, 'key'>): Promise<MoveRecord[]> {
    return await this.parts.store.history(tenant.key)
  }

  /** Drops the sources of finished moves whose keeping time is over; returns how many. */
  async sweep (): Promise<number> {
    let dropped = 0
    for (const move of await this.parts.store.dueSources()) {
      await this.parts.lock(move.tenantKey, async () => {
        const now = await this.parts.store.placementOf(move.tenantKey)
        // A tenant that moved back there lives in that database (or those shared rows) again: it is not a kept source any more.
        if (now !== undefined && (now.host ?? this.parts.defaultHost) === move.fromHost && now.isolation === move.fromIsolation) {
          await this.parts.store.sourceDropped(move.id)
          return
        }
        const { source } = this.sides(move.tenantKey, move)
        await this.dropKept(source)
        await this.parts.store.sourceDropped(move.id)
        dropped++
      })
    }
    return dropped
  }

  private async begin (tenant: Tenant, options: MoveOptions): Promise<MoveRecord> {
    const { strategy, hosts, defaultHost } = this.parts
    const refuse = (why: string): never => { throw new InvalidMoveError(tenant.identifier, why) }
    const fromIsolation = tenant.isolation ?? null
    const toIsolation = options.isolation === undefined ? fromIsolation : options.isolation
    if (toIsolation !== null && toIsolation !== 'database' && toIsolation !== 'schema') {
      refuse(`isolation "${String(toIsolation).slice(0, 40)}" is not one a tenant can have; 'database' or 'schema' isolates it, null consolidates it`)
    }
    if (strategy.kind !== 'shared' && toIsolation !== null) refuse(`only a tenant of strategy shared can be isolated; with strategy ${strategy.kind} it has a ${strategy.kind} of its own already`)
    if (strategy.kind === 'shared' && fromIsolation === null && toIsolation === null) {
      refuse(options.isolation === null
        ? 'it is in the shared tables already'
        : 'strategy shared keeps every tenant in the same tables, so there is no database of its own to move; tenants:isolate gives it one')
    }
    if (typeof options.host !== 'string' || hosts[options.host] === undefined) refuse(`host "${String(options.host).slice(0, 63)}" is not in the database.hosts option`)
    const from = tenant.databaseHost ?? defaultHost
    if (from === options.host && fromIsolation === toIsolation) refuse(`it is on host "${from}" already`)
    if (tenant.status !== 'active' && tenant.status !== 'suspended') refuse(`it is ${tenant.status}; only active and suspended tenants move`)
    const mode = options.offline === true ? 'offline' : 'online'
    const place = { fromHost: from, toHost: options.host, fromIsolation, toIsolation }
    const sides = this.sides(tenant.key, place)
    // A schema of its own lives in the shared tables' database whatever the host: a move would rebuild it over itself.
    if (sides.source.id === sides.target.id) {
      refuse(toIsolation === 'schema'
        ? 'its schema of its own is in the shared tables\' database, which no host changes; consolidate it, then isolate it into a database on the host you want'
        : 'it is there already')
    }
    if (mode === 'online' && sides.source.schema !== sides.target.schema) {
      // Strategy shared, to or from a schema of its own: PostgreSQL replicates a table only into the table of the same schema and name.
      throw new MoveUnavailableError(tenant.identifier, `its tables are in schema "${sides.source.schema ?? 'public'}" there and go to schema "${sides.target.schema ?? 'public'}", and logical replication copies a table only into one of the same schema and name; move it with --offline (requests wait while its rows are copied)`)
    }
    if (mode === 'online') {
      // A schema tenant's subscription lives in the target host's database, shared rows' in the shared database; a database's in its own, not made yet.
      const madeLater = sides.target.schema === null || sides.target.isolation === 'database'
      const subscriber = madeLater ? databaseUrl(hosts[options.host] as string, 'postgres') : ownerUrlOf(sides.target)
      // Strategy shared: the tables' owner (the central role) must write past their row-level security.
      const owner = strategy.kind === 'shared' ? decodeURIComponent(new URL(ownerUrlOf(sides.target)).username) : undefined
      const problems = await replicationProblems(this.replica(sides.source), { url: subscriber, schema: null }, from, options.host, owner)
      // Only when the rest holds: the probe needs a role that may subscribe.
      if (strategy.kind === 'shared') problems.push(...await rowFilterProblems(this.replica(sides.source), subscriber, from, options.host))
      if (problems.length === 0) {
        const reach = await reachProblem({ url: subscriber, schema: null }, this.sourceConnection(from, sides.source), from, options.host)
        if (reach !== null) problems.push(reach)
      }
      if (problems.length > 0) throw new MoveUnavailableError(tenant.identifier, problems.join('; '))
    }
    return await this.parts.store.begin({ tenantKey: tenant.key, mode, ...place, databaseName: sides.source.name })
  }

  /** Runs the move's remaining steps, recording each. */
  private async drive (tenant: Tenant, start: MoveRecord, onStep: MoveOptions['onStep']): Promise<MoveRecord> {
    const { store } = this.parts
    const steps = start.mode === 'online' ? ONLINE : OFFLINE
    let move = start
    const sides = this.sides(tenant.key, move)
    let links: SwitchLinks | null = null
    // The held window's connections, opened before the hold (or on a move resumed inside it).
    const linked = async (): Promise<SwitchLinks> => {
      const { source } = sides
      const fence = async (): ReturnType<typeof prepareFence> => {
        if (this.inSharedRows(source)) return await prepareRowFence(ownerUrlOf(source), source.schema as string, source.key)
        return source.schema === null || source.isolation === 'database' ? await prepareFence(source.server, source.name) : await prepareSchemaFence(ownerUrlOf(source), source.schema)
      }
      links ??= await openSwitchLinks(fence, ownerUrlOf(sides.target))
      return links
    }
    try {
      for (let at = steps.indexOf(move.step) + 1; at < steps.length; at++) {
        const step = steps[at] as MoveStep
        await this.run(step, tenant, move, sides, linked)
        if (step === 'done') await store.finish(move.id, 'done')
        else if (step !== 'switched') await store.step(move.id, step)
        move = { ...move, step, state: step === 'done' ? 'done' : 'running' }
        this.parts.log.info({ tenant: tenant.key, move: move.id, step }, 'fastify-tenancy: move step done')
        await onStep?.(step, move)
      }
    } catch (error) {
      await store.failed(move.id, (error as Error).message).catch(() => {})
      throw error
    } finally {
      await (links as SwitchLinks | null)?.close()
    }
    return (await store.history(tenant.key, 1))[0] ?? move
  }

  private async run (step: MoveStep, tenant: Tenant, move: MoveRecord, sides: Sides, linked: () => Promise<SwitchLinks>): Promise<void> {
    const { store, settings } = this.parts
    const { source, target, name } = sides
    switch (step) {
      case 'target': {
        const executed = await withServer(ownerUrlOf(source), async (c) => await executedMigrations(c, source.schema))
        const { isolation } = this.parts
        if (isolation !== null && this.inSharedRows(target)) {
          // Into the shared tables: at their version, without rows of the tenant an earlier isolate left there.
          if (!sameList(executed, await isolation.sharedExecuted())) throw new InvalidMoveError(source.key, 'its database and the shared tables are at different migrations; run tenants:migrate first')
          await this.dropKept(target)
          for (const kept of await store.keptInShared(move.tenantKey)) await store.sourceDropped(kept.id)
          return
        }
        // A kept source of an earlier move away from this host is replaced by the new copy.
        for (const kept of await store.keptOn(move.toHost, target.name, move.toIsolation)) await store.sourceDropped(kept.id)
        if (isolation !== null) {
          await checkVersion(this.parts.migrator, executed)
          if (await this.parts.strategy.exists(target)) await this.parts.strategy.drop(target)
          if (target.isolation === 'database') await createDatabase(target.server, target.name)
          await isolation.prepare(target, executed)
          return
        }
        await makeTargetAt(this.parts.strategy, this.parts.migrator, target, executed)
        return
      }
      // Strategy shared: only the tenant's rows, wherever they are (an isolated database has only them; the filter keeps it so).
      case 'published': await publish(this.replica(source), name, this.parts.strategy.kind === 'shared' ? source.key : undefined); return
      case 'subscribed': {
        await subscribe(this.replica(target), name, this.sourceConnection(move.fromHost, source))
        return
      }
      case 'copied': {
        if (move.mode === 'online') {
          await waitCopied(this.replica(target), name, settings.copyTimeoutMs)
          // Close to the source before the hold, so the switch has only the last changes to wait for.
          const { fence } = await linked()
          await waitCaughtUp(this.replica(target), name, await flushedPosition(fence.client), settings.catchUpTimeoutMs)
        } else {
          const { fence, target: into } = await linked()
          await copyTables(fence.client, source.schema, into, target.schema, this.parts.strategy.kind === 'shared' ? source.key : undefined)
        }
        return
      }
      case 'held':
        await linked()
        await store.hold(tenant.key, true)
        this.changed(tenant.key)
        // This instance's requests of the tenant end (the others' are awaited at the fence).
        await this.parts.hold.idle(tenant.key, settings.drainMs)
        // A request that began as the hold came may have opened a pool after the first retire: it goes too, or the fence would wait for it.
        this.parts.connections.retire(tenant.key)
        return
      case 'fenced': await (await linked()).fence.raise(settings.drainMs); return
      case 'caught-up': {
        const { fence, target: into } = await linked()
        await caughtUp(into, name, await flushedPosition(fence.client), settings.catchUpTimeoutMs)
        return
      }
      case 'sequences': {
        const { fence, target: into } = await linked()
        const values = await readSequences(fence.client, source.schema)
        // Into a schema of another name (strategy shared, to or from a schema of its own): the same sequences there.
        const renamed = source.schema !== null && target.schema !== null && source.schema !== target.schema
        await writeSequences(into, renamed ? values.map((v) => ({ ...v, schema: target.schema as string })) : values)
        return
      }
      case 'switched':
        await store.switch(move, settings.keepSourceMs)
        this.changed(tenant.key)
        return
      case 'done':
        if (move.mode === 'online') {
          await unsubscribe(this.replica(target), name)
          await dropSlot(source.server, name, settings.drainMs + 10_000)
          // A schema's database stays open to other tenants: its publication goes now (a database's goes with the kept source).
          if (source.schema !== null && source.isolation !== 'database') await unpublish(this.replica(source), name)
        }
    }
  }

  /** This instance forgets the tenant (its cached row and its pools) at once; the others hear the row's change notice. */
  private changed (key: string): void {
    this.parts.forget({ keys: [key], identifiers: [], resourceKeys: [], domains: [] })
  }

  private sides (key: string, move: Pick<MoveRecord, 'fromHost' | 'toHost' | 'fromIsolation' | 'toIsolation'>): Sides {
    const at = (host: string, isolation: TenantIsolation | null): TenantTarget => {
      const url = this.parts.hosts[host]
      if (url === undefined) throw new InvalidMoveError(key, `host "${host}" is not in the database.hosts option`)
      return this.parts.strategy.target(key, host, url, isolation)
    }
    return { source: at(move.fromHost, move.fromIsolation), target: at(move.toHost, move.toIsolation), name: replicationName(key) }
  }

  /** Strategy `shared`: the target is the tenant's rows in the tables every tenant shares. */
  private inSharedRows (target: TenantTarget): boolean {
    return this.parts.strategy.kind === 'shared' && target.isolation == null
  }

  /** Drops a kept source; the tenant's rows in the shared tables lose the fence an isolate left on them first. */
  private async dropKept (source: TenantTarget): Promise<void> {
    if (this.inSharedRows(source)) await this.lowerFenceOf(source)
    await this.parts.strategy.drop(source)
  }

  private async lowerFenceOf (source: TenantTarget): Promise<void> {
    if (this.inSharedRows(source)) await lowerRowFence(ownerUrlOf(source), source.schema as string, source.key)
    else if (source.schema === null || source.isolation === 'database') await lowerFence(source.server, source.name)
    else await lowerSchemaFence(ownerUrlOf(source), source.schema)
  }

  /** How the target server reaches the source's database: `moves.replicationUrls[host]`, else the host's URL (shared rows: as their owner). */
  private sourceConnection (fromHost: string, source: TenantTarget): string {
    if (this.inSharedRows(source) || source.isolation === 'schema') return ownerUrlOf(source)
    const from = this.parts.replicationUrls[fromHost] ?? this.parts.hosts[fromHost] as string
    return source.schema === null || source.isolation === 'database' ? databaseUrl(from, source.name) : from
  }

  /**
   * How replication reaches a side: an isolated database through its host's
   * URL (the role that made it, as for a database tenant: its subscription
   * then writes past the tables' row-level security), shared rows as their
   * owner, anything else through its URL.
   */
  private replica (target: TenantTarget): ReplicaSide {
    if (target.isolation === 'database') return { url: databaseUrl(target.server, target.name), schema: target.schema }
    return { url: ownerUrlOf(target), schema: target.schema }
  }

  private async mustFind (key: string): Promise<Tenant> {
    const tenant = await this.parts.find(key)
    if (tenant === null) throw new TenantNotFoundError(key)
    return tenant
  }
}

interface Sides { source: TenantTarget, target: TenantTarget, name: string }

/** Where a move goes, in words: a host, or (strategy shared) an isolated database on it or the shared tables. */
export function placeName (host: string, isolation: TenantIsolation | null | undefined, shared = false): string {
  if (isolation === 'database') return `a database of its own on host "${host}"`
  if (isolation === 'schema') return 'a schema of its own'
  return shared ? 'the shared tables' : `host "${host}"`
}

/** The command that finishes a move after its switch. */
function finishCommand (identifier: string, move: Pick<MoveRecord, 'toHost' | 'fromIsolation' | 'toIsolation'>): string {
  if (move.toIsolation === 'database' && move.fromIsolation === null) return `tenants:isolate ${identifier} --to ${move.toHost}`
  if (move.toIsolation === 'schema' && move.fromIsolation === null) return `tenants:isolate ${identifier} --into schema`
  if (move.toIsolation === null && move.fromIsolation !== null) return `tenants:consolidate ${identifier}`
  return `tenants:move ${identifier} --to ${move.toHost}`
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i])
}
