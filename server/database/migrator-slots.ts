import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import type { Configuration } from '@mikro-orm/core'
import { quoteIdent } from './names.js'
import { tenantDialect } from './tenant-dialect.js'
import { statementClient, type StatementSetup } from './statement-client.js'
import { schemaSetup, type TenantTarget } from './tenant-target.js'
import { MigrationRunner } from './migration-runner.js'

type MigrationTarget = Pick<TenantTarget, 'url' | 'schema' | 'name'>

/** Strategy `shared`: where the shared tables are and which role may cross tenants. */
interface SharedContext {
  schema: string
  centralRole: string
}

/** Idle slots kept per host; more are closed as they come back. */
const KEPT_PER_HOST = 16
/** A schema host's slot keeps its connection this long after its last tenant (close() ends it sooner). */
const IDLE_MS = 5000

/** One MikroORM migrating one tenant at a time, reused for the next tenant of its host. */
interface Slot {
  orm: MikroORM
  /** The search_path setup of its statements (schema hosts), set for each tenant. */
  setup: StatementSetup | null
  connected: boolean
  idle?: NodeJS.Timeout
}

let made = 0

/**
 * MikroORM instances for migrations, kept per database host and reused from
 * tenant to tenant instead of one made and closed per tenant: a rollout over
 * 10,000 schema tenants of one host runs on as many connections as it runs
 * tenants at once. A tenant database needs a connection of its own, so a
 * database host's slot reconnects to each tenant's database and lets it go
 * when the tenant is done (a kept connection would stop the database being
 * dropped); a schema host's slot keeps its one connection and sets the
 * tenant's schema on each statement (reset between tenants), closing it
 * after IDLE_MS unused.
 */
export class MigratorSlots {
  /** The shared context of a slot's running migration, by its ORM's configuration (what a migration is given). */
  private static readonly shared = new WeakMap<Configuration, SharedContext>()
  private readonly idle = new Map<string, Slot[]>()
  /** Set by close(): a slot that comes back after it is closed, not kept. */
  private closed = false
  /** Slots closed after IDLE_MS unused, still closing: close() waits for them. */
  private readonly closing = new Set<Promise<void>>()
  /** Each database host's PostgreSQL version, told to knex so a tenant database's new connection skips its `select version()`. */
  private readonly versions = new Map<string, string>()

  static sharedContext (config: Configuration): SharedContext | undefined {
    return MigratorSlots.shared.get(config)
  }

  /** Runs `fn` with a runner on `target` (database or schema), on a slot of its host. */
  async with<T> (target: MigrationTarget, shared: SharedContext | undefined, fn: (runner: MigrationRunner) => Promise<T>): Promise<T> {
    this.closed = false
    const key = hostKey(target)
    const slot = this.idle.get(key)?.pop() ?? newSlot(target)
    clearTimeout(slot.idle)
    let healthy = false
    try {
      if (target.schema === null) {
        // The database is the tenant: the slot connects to it, whichever it served before.
        const version = this.versions.get(key)
        await slot.orm.reconnect({ dbName: databaseOf(target.url), ...(version === undefined ? {} : { driverOptions: { version } }) })
        slot.connected = true
      } else {
        slot.setup = schemaSetup(target.schema)
        // What a migration reads as this.config.get('schema'), as the ORM made per tenant had it.
        slot.orm.config.set('schema', target.schema)
        if (!slot.connected) { await slot.orm.reconnect(); slot.connected = true }
      }
      if (shared === undefined) MigratorSlots.shared.delete(slot.orm.config)
      else MigratorSlots.shared.set(slot.orm.config, shared)
      const outside = target.schema === null ? {} : { outsideTransaction: sessionScope(slot, target.schema) }
      const result = await fn(new MigrationRunner({ orm: slot.orm, schema: target.schema, name: target.name, ...outside }))
      // Only a hint: the migrations have run whatever this says.
      if (target.schema === null && !this.versions.has(key)) this.versions.set(key, await serverVersion(slot.orm).catch(() => ''))
      healthy = true
      return result
    } finally {
      MigratorSlots.shared.delete(slot.orm.config)
      await this.release(key, slot, healthy && target.schema !== null)
    }
  }

  /** Closes every kept slot. */
  async close (): Promise<void> {
    this.closed = true
    const slots = [...this.idle.values()].flat()
    this.idle.clear()
    await Promise.all([...slots.map(async (slot) => { clearTimeout(slot.idle); await closeSlot(slot) }), ...this.closing])
  }

  /**
   * Back to the host's idle slots. A tenant database's connection is let go
   * now; a schema host's stays for the next tenant unless the run failed
   * (its connection's state is then unknown).
   */
  private async release (key: string, slot: Slot, keepConnection: boolean): Promise<void> {
    if (!keepConnection) await closeSlot(slot)
    const idle = this.idle.get(key) ?? []
    if (this.closed || idle.length >= KEPT_PER_HOST) { await closeSlot(slot); return }
    idle.push(slot)
    this.idle.set(key, idle)
    if (slot.connected) {
      // Unused for IDLE_MS: out of the idle slots first, so no run takes it up while its ORM closes.
      slot.idle = setTimeout(() => {
        const left = this.idle.get(key)
        const at = left?.indexOf(slot) ?? -1
        if (at === -1) return
        left?.splice(at, 1)
        const closed = closeSlot(slot).finally(() => this.closing.delete(closed))
        this.closing.add(closed)
      }, IDLE_MS)
      slot.idle.unref()
    }
  }
}

async function closeSlot (slot: Slot): Promise<void> {
  if (!slot.connected) return
  slot.connected = false
  await slot.orm.close(true).catch(() => {})
}

/**
 * For a schema host's statement that cannot run in a transaction block: the
 * per-statement setup would put it in one (it is pipelined before the same
 * Sync), so the session's search_path is set instead. Leaving the tenant's
 * setup resets the session first (DISCARD ALL), and coming back to it resets
 * it again, so the session setting never outlives the migration.
 */
function sessionScope (slot: Slot, schema: string) {
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    const setup = slot.setup
    slot.setup = null
    try {
      await slot.orm.em.getConnection().execute(`set search_path to ${quoteIdent(schema)}, pg_temp`)
      return await fn()
    } finally {
      slot.setup = setup
    }
  }
}

/** A new MikroORM on the target's host (no entities: migrations are SQL); it connects on first use. */
function newSlot (target: MigrationTarget): Slot {
  const slot: Slot = { orm: undefined as unknown as MikroORM, setup: null, connected: false }
  slot.orm = MikroORM.initSync({
    driver: PostgreSqlDriver,
    clientUrl: target.url,
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: `fastify-tenancy:migrate:${++made}`,
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    // A missing database is an error, never silently created (a deleted tenant stays deleted).
    ensureDatabase: false,
    // A schema host's statements each run with the slot's current tenant schema first on the search_path, set in their own transaction.
    ...(target.schema === null ? {} : { driverOptions: { client: schemaHostDialect(slot) } })
  })
  return slot
}

/** The knex client of a schema host's slot: each statement set up with the schema of the tenant the slot runs now. */
function schemaHostDialect (slot: Slot): ReturnType<typeof tenantDialect> {
  const keep = (error: Error): Error => error
  return tenantDialect({
    host: 'migrations',
    // reset: a connection that served another tenant is reset first (DISCARD ALL), so a migration's session state (a temp table, a SET) never meets the next tenant's.
    Client: statementClient({ setup: () => slot.setup as StatementSetup, reset: true, fault: keep }),
    acquireTimeoutMs: 60_000,
    waitOf: () => null,
    fault: keep,
    attach: () => {}
  })
}

/** Slots are shared by targets with the same server, role and options; a schema host's also by the same database. */
function hostKey (target: MigrationTarget): string {
  const url = new URL(target.url)
  if (target.schema !== null) return `schema:${url.toString()}`
  url.pathname = '/'
  return `database:${url.toString()}`
}

/** The server's version as knex's PostgreSQL client reads it from `select version()` (major.minor). */
async function serverVersion (orm: MikroORM): Promise<string> {
  const rows = await orm.em.getConnection().execute<Array<{ v: string }>>("select current_setting('server_version') as v")
  return /^\d+(\.\d+)?/.exec(rows[0]?.v ?? '')?.[0] ?? ''
}

function databaseOf (url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
}
