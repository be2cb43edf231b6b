import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql'
import { JSMigrationGenerator, Migrator, TSMigrationGenerator } from '@mikro-orm/migrations'
import type { EntitySchema, IMigrationGenerator, MigrationDiff } from '@mikro-orm/core'
import { libraryTenantTables } from '../../migrations/tenant/index.js'
import { InvalidOptionError } from '../errors.js'
import { assertSafeName } from './names.js'
import { addsKey } from './tenant-migration.js'
import { createDatabase, dropDatabase } from './tenant-database.js'
import { ensureTemplate } from './template.js'
import { TENANT_MIGRATIONS_TABLE, TenantMigrator } from './tenant-migrator.js'
import { appMigrationSet, migrationsFolder, type TenantMigrationsOptions } from './migration-sets.js'

/** Where and against what the app's tenant entities are compared with its tenant migrations. */
export interface MigrationDiffOptions {
  /** A server URL of the default database host: the scratch database is made there. */
  server: string
  /** Tenant database prefix: the scratch database is named `<prefix>diff_<random>`. */
  prefix: string
  /** The app's tenant entities, as it declares them (strategy `shared` adds the tenant key itself). */
  entities: Array<EntitySchema<any, any>>
  /** The app's tenant migrations (`tenantMigrations`). */
  migrations: TenantMigrationsOptions
  /** Strategy `database` with a template: the template to clone (kept at `migrator`'s migrations), else null. */
  template: { name: string, migrator: TenantMigrator } | null
  /** Strategy `shared`: new tables are made tenant tables in the migrations written (TenantMigration.tenantTable). */
  shared: boolean
}

/** The SQL that would bring the schema the migrations make to the one the entities describe. */
export interface EntityDiff {
  up: string[]
  down: string[]
}

/**
 * Runs `fn` with a MikroORM instance of the app's tenant entities on a
 * scratch database at the newest app migration: a clone of the template when
 * there is one, else an empty database the migrations ran on. The scratch
 * database is dropped after, whatever happens.
 */
async function withScratch<T> (o: MigrationDiffOptions, fn: (orm: MikroORM) => Promise<T>): Promise<T> {
  const scratch = assertSafeName(`${o.prefix}diff_${randomBytes(4).toString('hex')}`)
  const url = new URL(o.server)
  url.pathname = '/' + scratch
  if (o.template !== null) {
    await ensureTemplate(o.server, o.template.name, o.template.migrator)
    await createDatabase(o.server, scratch, o.template.name)
  } else {
    await createDatabase(o.server, scratch)
  }
  let orm: MikroORM | null = null
  try {
    if (o.template === null) await new TenantMigrator([appMigrationSet(o.migrations)]).upDatabase(o.server, scratch)
    const folder = migrationsFolder(o.migrations)
    orm = MikroORM.initSync({
      driver: PostgreSqlDriver,
      clientUrl: url.toString(),
      entities: o.entities,
      discovery: { warnWhenNoEntities: false },
      contextName: `fastify-tenancy:diff:${scratch}`,
      pool: { min: 0, max: 1 },
      allowGlobalContext: true,
      ensureDatabase: false,
      // fastify-tenancy's own tables (in a template made with syncing on) are not the app's to diff.
      schemaGenerator: { skipTables: [...libraryTenantTables] },
      migrations: {
        tableName: TENANT_MIGRATIONS_TABLE,
        ...(folder === null ? {} : { path: folder, pathTs: folder }),
        emit: o.migrations.emit ?? 'ts',
        ...(o.migrations.fileName === undefined ? {} : { fileName: o.migrations.fileName }),
        dropTables: o.migrations.dropTables ?? true,
        safe: o.migrations.safe ?? false,
        snapshot: false,
        silent: true,
        ...(o.shared ? { generator: tenantMigrationGenerator(o.migrations.emit ?? 'ts', folder) } : {})
      }
    })
    return await fn(orm)
  } finally {
    await orm?.close(true)
    await dropDatabase(o.server, scratch)
  }
}

/** What the app's tenant entities and its tenant migrations disagree on: empty lists when they agree. */
export async function tenantEntityDiff (o: MigrationDiffOptions): Promise<EntityDiff> {
  return await withScratch(o, async (orm) => {
    const diff = await orm.schema.getUpdateSchemaMigrationSQL({ wrap: false, safe: o.migrations.safe ?? false, dropTables: o.migrations.dropTables ?? true })
    const lines = (sql: string): string[] => sql.split(/;\n/).map((s) => s.trim()).filter((s) => s.length > 0)
    return { up: lines(diff.up), down: lines(diff.down) }
  })
}

/**
 * Writes a new tenant migration into the app's migrations folder from the
 * difference between its tenant entities and the schema its migrations
 * make; returns the file written, or null when there is nothing to migrate.
 */
export async function createTenantMigration (o: MigrationDiffOptions, name?: string): Promise<{ fileName: string, folder: string, up: string[] } | null> {
  const folder = migrationsFolder(o.migrations)
  if (folder === null) throw new InvalidOptionError('tenantMigrations', 'has no `path` (or `pathTs`): migration:create writes the new migration into that folder')
  return await withScratch(o, async (orm) => {
    const migrator = new Migrator(orm.em)
    const made = await migrator.createMigration(folder, false, false, name)
    if (made.fileName === '') return null
    return { fileName: made.fileName, folder, up: made.diff.up.filter((s) => s.trim() !== '') }
  })
}

/**
 * How a generated migration names fastify-tenancy: the package, where the
 * migrations folder can resolve it (an installed app), else this library's
 * own entry by a relative path (a migrations folder inside a clone of it).
 */
function librarySpecifier (folder: string | null): string {
  const entry = fileURLToPath(new URL('../index.js', import.meta.url))
  if (folder === null) return 'fastify-tenancy'
  // Run from the sources (a clone): the sources, never a dist/ that the package name would reach from inside the clone and that may be older.
  if (import.meta.url.endsWith('.ts')) return relativeSpecifier(folder, entry)
  try {
    createRequire(join(folder, 'noop.js')).resolve('fastify-tenancy')
    return 'fastify-tenancy'
  } catch {
    return relativeSpecifier(folder, entry)
  }
}

function relativeSpecifier (folder: string, entry: string): string {
  const path = relative(folder, entry).split(sep).join('/')
  return path.startsWith('.') ? path : `./${path}`
}

/**
 * Strategy `shared`: the migrations written extend TenantMigration, and each
 * table they create is made a tenant table (`this.tenantTable('invoices')`)
 * right after, so row-level security is part of the migration itself.
 */
function tenantMigrationGenerator (emit: 'ts' | 'js' | 'cjs', folder: string | null): new (...args: any[]) => IMigrationGenerator {
  const specifier = librarySpecifier(folder)
  const Base = emit === 'ts' ? TSMigrationGenerator : JSMigrationGenerator
  return class TenantMigrationGenerator extends Base {
    override generateMigrationFile (className: string, diff: MigrationDiff): string {
      const up = diff.up.flatMap((sql) => {
        const table = /^create table "([^"]+)"/i.exec(sql)?.[1]
        if (table !== undefined) return [sql, `\u0000tenantTable:${table}`]
        // A key added to a table: per tenant from the start (TenantMigration.perTenant).
        return addsKey(sql) ? [`\u0000perTenant:${sql}`] : [sql]
      })
      return super.generateMigrationFile(className, { ...diff, up })
        .replace("import { Migration } from '@mikro-orm/migrations';", `import { TenantMigration } from '${specifier}';`)
        .replace("const { Migration } = require('@mikro-orm/migrations');", `const { TenantMigration } = require('${specifier}');`)
        .replace(' extends Migration {', ' extends TenantMigration {')
    }

    override createStatement (sql: string, padLeft: number): string {
      if (sql.startsWith('\u0000tenantTable:')) return `${' '.repeat(padLeft)}this.tenantTable('${sql.slice(13)}');\n`
      if (sql.startsWith('\u0000perTenant:')) return super.createStatement(sql.slice(11), padLeft).replace('this.addSql(', 'this.perTenant(')
      return super.createStatement(sql, padLeft)
    }
  }
}
