import type { Transaction } from '@mikro-orm/core'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Migration } from '@mikro-orm/migrations'
import { SchemaTooNewError, TenantDatabaseMissingError } from '../errors.js'
import { quoteIdent } from './names.js'
import { PG, isUndefinedDatabase, pgCode } from './pg-errors.js'
import type { MigrationSet, TenantMigrationEntry } from './migration-sets.js'

/** The one table of a tenant (database, schema, or the shared schema) that records which tenant migrations ran, ours and the app's. */
export const TENANT_MIGRATIONS_TABLE = 'fastify_tenancy_migrations'

/** One set with its migrations as they are now. */
export interface SetList {
  set: MigrationSet
  migrations: TenantMigrationEntry[]
}

/** Where the migrations run: the ORM on the target, and the target's schema (null: a tenant database, its `public`). */
export interface RunTarget {
  orm: MikroORM
  schema: string | null
  /** What the missing-target error names: the database or schema. */
  name: string
  /**
   * Runs a migration that is not transactional (CREATE INDEX CONCURRENTLY)
   * where its statements find the tenant's tables. A schema host gives each
   * statement its schema in a transaction of its own, which such a statement
   * refuses; without this, the ORM's connection as it is.
   */
  outsideTransaction?: <T>(fn: () => Promise<T>) => Promise<T>
}

/**
 * Runs tenant migrations the way MikroORM's Migrator does (the same
 * migration classes, the same queries, the same table, rows and
 * transactions), on an ORM that is reused from tenant to tenant. The
 * Migrator itself lists every table of the database through
 * information_schema on each run, which in a database of 10,000 tenant
 * schemas costs more than the migration; this asks for the one table.
 */
export class MigrationRunner {
  private readonly target: RunTarget
  private readonly table: string

  constructor (target: RunTarget) {
    this.target = target
    this.table = `${quoteIdent(target.schema ?? 'public')}.${quoteIdent(TENANT_MIGRATIONS_TABLE)}`
  }

  /** Names of the migrations the target has run, in the order they ran; null when it has no migrations table yet. */
  async executed (): Promise<string[] | null> {
    let rows: Array<{ name: string }>
    try {
      rows = await this.execute(`select name from ${this.table} order by id`)
    } catch (error) {
      if (pgCode(error) !== PG.UNDEFINED_TABLE) throw error
      await this.assertTarget()
      return null
    }
    return rows.map((r) => migrationName(r.name))
  }

  /** Runs every pending migration of the sets, in order (up to and including `to`, when it is one of them); returns the names it ran. */
  async up (lists: readonly SetList[], to?: string): Promise<string[]> {
    // A target this app does not know would otherwise run every migration (a move's source at a newer version).
    if (to !== undefined && !lists.some((l) => l.migrations.some((m) => m.name === to))) throw new SchemaTooNewError(to)
    const executed = await this.executed()
    const done = new Set(executed ?? [])
    const ran: string[] = []
    let tableMade = executed !== null
    for (const { set, migrations } of lists) {
      const last = to === undefined ? -1 : migrations.findIndex((m) => m.name === to)
      const pending = (last === -1 ? migrations : migrations.slice(0, last + 1)).filter((m) => !done.has(m.name))
      if (pending.length > 0) {
        if (!tableMade) { await this.makeTable(); tableMade = true }
        ran.push(...await this.runSet(set, pending, 'up'))
      }
      if (last !== -1) break
    }
    return ran
  }

  /** Rolls back the newest migration of the last set that has run one; returns its name, or nothing. */
  async down (lists: readonly SetList[]): Promise<string[]> {
    const executed = new Set(await this.executed() ?? [])
    for (const { set, migrations } of [...lists].reverse()) {
      const newest = migrations.filter((m) => executed.has(m.name)).at(-1)
      if (newest !== undefined) return await this.runSet(set, [newest], 'down')
    }
    return []
  }

  /** Runs `migrations` of one set with the set's transaction options, each recorded (or, down, unrecorded) with it. */
  private async runSet (set: MigrationSet, migrations: TenantMigrationEntry[], method: 'up' | 'down'): Promise<string[]> {
    const conn = this.target.orm.em.getConnection()
    const ran: string[] = []
    // Transactional migrations run together in one transaction (allOrNothing) or each in its own; one that
    // says it is not transactional (CREATE INDEX CONCURRENTLY) runs between them, outside any.
    let group: Array<{ entry: TenantMigrationEntry, migration: Migration }> = []
    const flush = async (): Promise<void> => {
      if (group.length === 0) return
      const batch = group
      group = []
      await conn.transactional(async (trx) => { for (const m of batch) await this.runOne(m.entry, m.migration, method, set, trx) })
      ran.push(...batch.map((m) => m.entry.name))
    }
    for (const m of migrations) {
      // One instance per migration: it says whether it is transactional, then runs.
      const migration = this.instance(m)
      if (set.transactional && migration.isTransactional()) {
        group.push({ entry: m, migration })
        if (!set.allOrNothing) await flush()
        continue
      }
      await flush()
      const outside = this.target.outsideTransaction ?? (async <T>(fn: () => Promise<T>): Promise<T> => await fn())
      await outside(async () => { await this.runOne(m, migration, method, set) })
      ran.push(m.name)
    }
    await flush()
    return ran
  }

  private instance (entry: TenantMigrationEntry): Migration {
    const MigrationClass = entry.class as unknown as new (...args: unknown[]) => Migration
    return new MigrationClass(this.target.orm.em.getDriver(), this.target.orm.config)
  }

  private async runOne (entry: TenantMigrationEntry, migration: Migration, method: 'up' | 'down', set: MigrationSet, trx?: Transaction): Promise<void> {
    migration.reset()
    if (trx !== undefined) migration.setTransactionContext(trx)
    await migration[method]()
    const driver = this.target.orm.em.getDriver()
    const helper = driver.getPlatform().getSchemaHelper()
    const queries = [
      ...(helper?.getSchemaBeginning(this.target.orm.config.get('charset'), set.disableForeignKeys) ?? '').split('\n'),
      ...migration.getQueries(),
      ...(helper?.getSchemaEnd(set.disableForeignKeys) ?? '').split('\n')
    ].filter((q) => typeof q !== 'string' || q.trim().length > 0)
    for (const query of queries) await driver.execute(query, undefined, 'all', trx)
    if (method === 'up') {
      await this.execute(`insert into ${this.table} (name) values (?)`, [entry.name], trx)
    } else {
      await this.execute(`delete from ${this.table} where name in (?, ?, ?)`, [entry.name, `${entry.name}.js`, `${entry.name}.ts`], trx)
    }
  }

  /** The table as MikroORM's migration storage makes it (knex's increments, string and dateTime with now()). */
  private async makeTable (): Promise<void> {
    try {
      await this.execute(`create table if not exists ${this.table} ("id" serial primary key, "name" varchar(255), "executed_at" timestamptz default CURRENT_TIMESTAMP)`)
    } catch (error) {
      if (pgCode(error) === PG.INVALID_SCHEMA_NAME) throw this.missing()
      throw error
    }
  }

  /** A missing database or schema is an error, never an empty one made in its name (a deleted tenant stays deleted). */
  private async assertTarget (): Promise<void> {
    if (this.target.schema === null) return
    const rows = await this.execute('select 1 as n from pg_catalog.pg_namespace where nspname = ?', [this.target.schema])
    if (rows.length === 0) throw this.missing()
  }

  private missing (): Error {
    return new TenantDatabaseMissingError(this.target.schema === null ? 'database' : 'schema', this.target.name)
  }

  private async execute<T = Record<string, any>> (sql: string, params: unknown[] = [], trx?: Transaction): Promise<T[]> {
    try {
      return await this.target.orm.em.getConnection().execute(sql, params as any[], 'all', trx) as T[]
    } catch (error) {
      if (isUndefinedDatabase(error)) throw this.missing()
      throw error
    }
  }
}

/** A migration's name as MikroORM records and compares it: without a .js or .ts ending. */
export function migrationName (name: string): string {
  return name.replace(/\.(js|ts)$/, '')
}
