import { createHash } from 'node:crypto'
import type { Configuration } from '@mikro-orm/core'
import type { TenantTarget } from './tenant-target.js'
import { appMigrationSet, librarySet, type MigrationSet, type TenantMigrationEntry, type TenantMigrationsOptions } from './migration-sets.js'
import { TENANT_MIGRATIONS_TABLE, migrationName, type MigrationRunner } from './migration-runner.js'
import { MigratorSlots } from './migrator-slots.js'

export { TENANT_MIGRATIONS_TABLE }

export type MigrationDirection = 'up' | 'down'

export type MigrationTarget = Pick<TenantTarget, 'url' | 'schema' | 'name' | 'server'>

/** Strategy `shared`: where the shared tables are and which role may cross tenants (for TenantMigration.tenantTable). */
export interface SharedMigrationContext {
  schema: string
  centralRole: string
}

/** The strategy-`shared` context a migration runs in, or undefined in the other strategies. */
export function sharedMigrationContext (config: Configuration): SharedMigrationContext | undefined {
  return MigratorSlots.sharedContext(config)
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
 * then the app's), all recorded in the one migrations table. Every path that
 * makes or migrates a tenant uses this one: provisioning, the template, the
 * fan-out, the rollouts, the CLI, the admin. Its MikroORM instances are kept
 * per database host and reused from tenant to tenant (migrator-slots.ts).
 */
export class TenantMigrator {
  private readonly sets: readonly MigrationSet[]
  private readonly slots = new MigratorSlots()

  constructor (sets: readonly MigrationSet[]) {
    this.sets = sets
  }

  /** Closes the connections it keeps (a schema host's); it can still be used after, opening them again. */
  async close (): Promise<void> {
    await this.slots.close()
  }

  /** Every set with its migrations as they are now. */
  async lists (): Promise<Array<{ set: MigrationSet, migrations: TenantMigrationEntry[] }>> {
    // Named as MikroORM's Migrator names them (its umzug storage drops a .js or .ts ending): the names the table holds.
    return await Promise.all(this.sets.map(async (set) => ({ set, migrations: (await set.list()).map((m) => ({ ...m, name: migrationName(m.name) })) })))
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
    return await this.slots.with(target, shared, async (runner) => await runner.up(lists, to))
  }

  /** Rolls the app's newest migration on the target back (ours stay: the library needs its tables); returns its name, or nothing. */
  async down (target: MigrationTarget, shared?: SharedMigrationContext): Promise<string[]> {
    const lists = (await this.lists()).filter((l) => l.set.owner === 'app')
    return await this.slots.with(target, shared, async (runner) => await runner.down(lists))
  }

  /** Which migrations the target has run, and which not (ours first, then the app's). */
  async status (target: MigrationTarget): Promise<MigrationStatus> {
    const lists = await this.lists()
    const ran = await this.slots.with(target, undefined, async (runner: MigrationRunner) => await runner.executed()) ?? []
    const done = new Set(ran)
    const status: MigrationStatus = { executed: [], pending: [] }
    for (const { migrations } of lists) for (const m of migrations) (done.has(m.name) ? status.executed : status.pending).push(m.name)
    // The one table holds every set's rows: what no set knows was run by another deploy.
    const known = new Set(lists.flatMap(({ migrations }) => migrations.map((m) => m.name)))
    const unknown = [...done].filter((name) => !known.has(name))
    if (unknown.length > 0) status.unknown = unknown
    return status
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
