import { readdir } from 'node:fs/promises'
import { basename, extname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Utils, type MigrationObject } from '@mikro-orm/core'
import { libraryTenantMigrations } from '../../migrations/tenant/index.js'
import { InvalidOptionError } from '../errors.js'

/**
 * The app's tenant migrations, as MikroORM's own migrations settings take
 * them: a folder (`path`, and `pathTs` for TypeScript sources, as
 * `mikro-orm migration:create` writes them) or a list of classes
 * (`migrationsList`). `emit`, `fileName`, `dropTables` and `safe` shape the
 * files `fastify-tenancy migration:create` writes.
 */
export interface TenantMigrationsOptions {
  /** Folder of the migration files (compiled JavaScript in production). */
  path?: string
  /** Folder of the TypeScript migration files, used when TypeScript can be loaded (tsx, ts-node, Vitest, Jest with ts-jest). */
  pathTs?: string
  /** The migrations as classes, in the order they run: `[{ name, class }]` or the classes themselves. */
  migrationsList?: Array<MigrationObject | MigrationObject['class']>
  /** Each migration in a transaction of its own (default true). */
  transactional?: boolean
  /** Every pending migration of a run in one transaction (default true). */
  allOrNothing?: boolean
  disableForeignKeys?: boolean
  /** Files migration:create writes: `ts` (default), `js` or `cjs`. */
  emit?: 'ts' | 'js' | 'cjs'
  fileName?: (timestamp: string, name?: string) => string
  dropTables?: boolean
  safe?: boolean
}

/** One migration: its name (as the migrations table records it) and its class. */
export interface TenantMigrationEntry {
  name: string
  class: MigrationObject['class']
}

/** A list of tenant migrations run together, in order, by one MikroORM Migrator. */
export interface MigrationSet {
  /** `fastify-tenancy` (the library's own tables) or `app`. */
  readonly owner: 'fastify-tenancy' | 'app'
  /** The migrations, read again each time (a migration file added to the folder counts at once). */
  list: () => Promise<TenantMigrationEntry[]>
  transactional: boolean
  allOrNothing: boolean
  disableForeignKeys: boolean
}

/** Files MikroORM's default glob (`!(*.d).{js,ts,cjs}`) takes, plus `.mjs`. */
function isMigrationFile (file: string): boolean {
  return /\.(js|ts|cjs|mjs)$/.test(file) && !/\.d\.[cm]?ts$/.test(file)
}

/** Set by the fastify-tenancy command when it has registered tsx through tsx's API (bin/fastify-tenancy.mjs). */
const TSX_REGISTERED = Symbol.for('fastify-tenancy.loadsTypeScript')

/**
 * Whether this process loads TypeScript: run from the sources, under a loader
 * MikroORM recognises, under tsx (`tsx app.ts`, `node --import tsx`), or in
 * the command with the app's tsx registered.
 */
function loadsTypeScript (): boolean {
  return import.meta.url.endsWith('.ts') || Utils.detectTsNode() || process.execArgv.some((arg) => /\btsx\b/.test(arg)) ||
    (globalThis as Record<symbol, unknown>)[TSX_REGISTERED] === true
}

/** The folder of the app's migration files, resolved against the working folder (as MikroORM's baseDir); null with migrationsList. */
export function migrationsFolder (options: TenantMigrationsOptions): string | null {
  const folder = options.pathTs !== undefined && (options.path === undefined || loadsTypeScript()) ? options.pathTs : options.path
  return folder === undefined ? null : resolve(process.cwd(), folder)
}

/** Loads every migration file of `folder`, in name order; the class is the module's first exported function (as MikroORM takes it). */
async function folderMigrations (folder: string): Promise<TenantMigrationEntry[]> {
  let files: string[]
  try {
    files = (await readdir(folder)).filter(isMigrationFile).sort()
  } catch (error) {
    // A folder not made yet holds no migrations (migration:create makes it).
    if ((error as { code?: string }).code === 'ENOENT') return []
    throw error
  }
  return await Promise.all(files.map(async (file) => {
    let mod: Record<string, unknown>
    try {
      mod = await import(pathToFileURL(join(folder, file)).href) as Record<string, unknown>
    } catch (error) {
      const noLoader = (error as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION'
      throw new InvalidOptionError('tenantMigrations', `names the folder ${folder}, whose file ${file} does not load: ${noLoader ? 'Node cannot load TypeScript by itself; give tenantMigrations.path the compiled JavaScript, or run with tsx' : (error as Error).message}`)
    }
    const found = Object.values(mod).find((value) => typeof value === 'function' && typeof (value as { prototype?: { up?: unknown } }).prototype?.up === 'function')
    if (found === undefined) throw new InvalidOptionError('tenantMigrations', `names the folder ${folder}, whose file ${file} exports no migration class`)
    return { name: basename(file, extname(file)), class: found as MigrationObject['class'] }
  }))
}

function listedMigrations (list: NonNullable<TenantMigrationsOptions['migrationsList']>): TenantMigrationEntry[] {
  return list.map((item) => typeof item === 'function' ? { name: item.name, class: item } : { name: item.name, class: item.class })
}

const libraryNames = new Set(libraryTenantMigrations.map((m) => m.name))

/**
 * The app's set: its folder (read on each use) or its list. Both sets record
 * into the one migrations table of a tenant, so an app migration may not take
 * the name of one of ours.
 */
export function appMigrationSet (options: TenantMigrationsOptions): MigrationSet {
  const folder = migrationsFolder(options)
  const given = options.migrationsList === undefined ? null : listedMigrations(options.migrationsList)
  return {
    owner: 'app',
    list: async () => {
      const list = given ?? (folder === null ? [] : await folderMigrations(folder))
      const taken = list.find((m) => libraryNames.has(m.name))
      if (taken !== undefined) throw new InvalidOptionError('tenantMigrations', `has a migration named ${taken.name}, a name fastify-tenancy's own tenant migrations use; rename it`)
      return list
    },
    transactional: options.transactional ?? true,
    allOrNothing: options.allOrNothing ?? true,
    disableForeignKeys: options.disableForeignKeys ?? false
  }
}

/** fastify-tenancy's own tenant tables (syncing's versions and outbox): run first, and only when syncing is configured. */
export const librarySet: MigrationSet = {
  owner: 'fastify-tenancy',
  list: async () => libraryTenantMigrations,
  transactional: true,
  allOrNothing: true,
  disableForeignKeys: false
}
