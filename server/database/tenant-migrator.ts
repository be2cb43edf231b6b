import { createHash } from 'node:crypto'
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import type { Configuration } from '@mikro-orm/core'
import { targetOrmOptions, type TenantTarget } from './tenant-target.js'
import { schemaDriverOptions } from './tenant-dialect.js'
import { TenantDatabaseMissingError } from '../errors.js'
import { appMigrationSet, librarySet, type MigrationSet, type TenantMigrationEntry, type TenantMigrationsOptions } from './migration-sets.js'
import { isUndefinedDatabase } from './pg-errors.js'

/** The one table of a tenant (database, schema, or the shared schema) that records which tenant migrations ran, ours and the app's. */
export const TENANT_MIGRATIONS_TABLE = 'fastify_tenancy_migrations'

export type MigrationDirection = 'up' | 'down'

export type MigrationTarget = Pick<TenantTarget, 'url' | 'schema' | 'name' | 'server'>

/** Strategy `shared`: where the shared tables are and which role may cross tenants (for TenantMigration.tenantTable). */
export interface SharedMigrationContext {
  schema: string
  centralRole: string
}

/** The shared context of a running migrator, by its configuration (what a migration is given). */
const sharedContexts = new WeakMap<Configuration, SharedMigrationContext>()

/** The strategy-`shared` context a migration runs in, or undefined in the other strategies. */
export function sharedMigrationContext (config: Configuration): SharedMigrationContext | undefined {
  return sharedContexts.get(config)
}

/** A tenant's migrations: which ran, which have not. */
export interface MigrationStatus {
  executed: string[]
  pending: string[]
  /** Migrations the target has run that none of the sets has (a newer deploy's, or removed ones). */
  unknown?: string[]
}

/**
 * Runs the tenant migrations on one tenant's database or schema: the sets in
 * order (fastify-tenancy's own first, when a configured feature needs them,
 * then the app's), each through MikroORM's Migrator, all recorded in the one
 * migrations table. Every path that makes or migrates a tenant uses this one:
 * provisioning, the template, the fan-out, the CLI, the admin.
 */
export class TenantMigrator {
  private readonly sets: readonly MigrationSet[]

  constructor (sets: readonly MigrationSet[]) {
    this.sets = sets
  }

  /** Every set with its migrations as they are now. */
  async lists (): Promise<Array<{ set: MigrationSet, migrations: TenantMigrationEntry[] }>> {
    return await Promise.all(this.sets.map(async (set) => ({ set, migrations: await set.list() })))
  }

  /** Names of every tenant migration, in the order they run. */
  async names (): Promise<string[]> {
    return (await this.lists()).flatMap((l) => l.migrations.map((m) => m.name))
  }

  /** A fingerprint of the migrations (template and spares are rebuilt when it changes). */
  async fingerprint (): Promise<string> {
    return createHash('sha256').update([TENANT_MIGRATIONS_TABLE, ...await this.names()].join('\n')).digest('hex').slice(0, 16)
  }

  /**
   * Runs every pending migration on the target, or those up to and including
   * migration `to` (a moved tenant's version); returns the names it ran.
   */
  async up (target: MigrationTarget, shared?: SharedMigrationContext, to?: string): Promise<string[]> {
    const lists = await this.lists()
    return await withMigratorOrm(target, shared, async (orm) => {
      const ran: string[] = []
      for (const { set, migrations } of lists) {
        if (migrations.length === 0) continue
        const last = to !== undefined && migrations.some((m) => m.name === to)
        ran.push(...(await migratorFor(orm, set, migrations).up(last ? { to } : undefined)).map((m) => m.name))
        if (last) break
      }
      return ran
    })
  }

  /** Rolls the app's newest migration on the target back (ours stay: the library needs its tables); returns its name, or nothing. */
  async down (target: MigrationTarget, shared?: SharedMigrationContext): Promise<string[]> {
    const lists = (await this.lists()).filter((l) => l.set.owner === 'app')
    return await withMigratorOrm(target, shared, async (orm) => {
      for (const { set, migrations } of lists.reverse()) {
        if (migrations.length === 0) continue
        const migrator = migratorFor(orm, set, migrations)
        if ((await migrator.getExecutedMigrations()).length === 0) continue
        return (await migrator.down()).map((m) => m.name)
      }
      return []
    })
  }

  /** Which migrations the target has run, and which not (ours first, then the app's). */
  async status (target: MigrationTarget): Promise<MigrationStatus> {
    const lists = await this.lists()
    return await withMigratorOrm(target, undefined, async (orm) => {
      const status: MigrationStatus = { executed: [], pending: [] }
      const known = new Set(lists.flatMap(({ migrations }) => migrations.map((m) => m.name)))
      const ran = new Set<string>()
      for (const { set, migrations } of lists) {
        if (migrations.length === 0) continue
        const migrator = migratorFor(orm, set, migrations)
        // Only the set's own names: the table also holds the other set's, and older ones.
        const names = new Set(migrations.map((m) => m.name))
        const all = (await migrator.getExecutedMigrations()).map((m) => m.name)
        for (const name of all) ran.add(name)
        const executed = new Set(all.filter((name) => names.has(name)))
        for (const m of migrations) (executed.has(m.name) ? status.executed : status.pending).push(m.name)
      }
      // The one table holds every set's rows: what no set knows was run by another deploy.
      const unknown = [...ran].filter((name) => !known.has(name))
      if (unknown.length > 0) status.unknown = unknown
      return status
    })
  }

  /** Brings database `name` on the server to the newest migrations (strategy `database`: the template). */
  async upDatabase (serverUrl: string, name: string): Promise<string[]> {
    const url = new URL(serverUrl)
    url.pathname = '/' + name
    return await this.up({ url: url.toString(), schema: null, name, server: serverUrl })
  }
}

/**
 * The tenant migrations of a configuration: fastify-tenancy's own syncing
 * tables when syncing is on (`sync` given), then the app's `tenantMigrations`.
 */
export function tenantMigratorFor (options: { sync: unknown, tenantMigrations: TenantMigrationsOptions | null }): TenantMigrator {
  return new TenantMigrator([
    ...(options.sync === null || options.sync === undefined ? [] : [librarySet]),
    ...(options.tenantMigrations === null ? [] : [appMigrationSet(options.tenantMigrations)])
  ])
}

/** A short-lived MikroORM instance (no entities: migrations are SQL) on the target, closed after `fn`. */
async function withMigratorOrm<T> (target: MigrationTarget, shared: SharedMigrationContext | undefined, fn: (orm: MikroORM) => Promise<T>): Promise<T> {
  const orm = MikroORM.initSync({
    driver: PostgreSqlDriver,
    ...targetOrmOptions(target),
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: `fastify-tenancy:migrate:${target.name}`,
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    // A missing database is an error, never silently created (a deleted tenant stays deleted).
    ensureDatabase: false,
    // Migrations are raw SQL: a schema tenant's (and the shared schema's) run with that schema first on the search_path of each transaction.
    ...(target.schema === null ? {} : { driverOptions: schemaDriverOptions(target.schema) })
  })
  if (shared !== undefined) sharedContexts.set(orm.config, shared)
  try {
    await assertTargetExists(orm, target)
    return await fn(orm)
  } finally {
    await orm.close(true)
  }
}

/** MikroORM's Migrator for one set, on `orm`'s connection, recording into the tenant migrations table. */
function migratorFor (orm: MikroORM, set: MigrationSet, migrations: TenantMigrationEntry[]): Migrator {
  orm.config.set('migrations', {
    ...orm.config.get('migrations'),
    tableName: TENANT_MIGRATIONS_TABLE,
    migrationsList: migrations,
    transactional: set.transactional,
    allOrNothing: set.allOrNothing,
    disableForeignKeys: set.disableForeignKeys,
    snapshot: false,
    silent: true
  })
  return new Migrator(orm.em)
}

/**
 * MikroORM's migrator creates a missing database (and schema) on its own;
 * a tenant whose database is gone must get an error instead, not an empty
 * database in its name. Asked on the migrator's own connection (no second
 * connection per tenant): a missing database refuses it.
 */
async function assertTargetExists (orm: MikroORM, target: MigrationTarget): Promise<void> {
  const missing = new TenantDatabaseMissingError(target.schema === null ? 'database' : 'schema', target.name)
  let rows: Array<{ n: number }>
  try {
    rows = await orm.em.getConnection().execute(target.schema === null ? 'select 1 as n' : 'select 1 as n from pg_namespace where nspname = ?', target.schema === null ? [] : [target.schema], 'all')
  } catch (error) {
    if (isUndefinedDatabase(error)) throw missing
    throw error
  }
  if (rows.length === 0) throw missing
}
