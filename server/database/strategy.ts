import { databaseUrl, quoteIdent, tenantDatabaseName } from './names.js'
import { createDatabase, databaseExists, dropDatabase, withServer } from './tenant-database.js'
import { ensureTemplate, forgetTemplate } from './template.js'
import { SpareDatabases } from './spares.js'
import type { TenantTarget } from './tenant-target.js'
import type { TenantIsolation } from '../tenant.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { PG, pgCode } from './pg-errors.js'

/** How tenants' tables are kept apart: a database each, a schema each, or shared tables with a tenant key under row-level security. */
export type StrategyName = 'database' | 'schema' | 'shared'

export interface DatabaseStrategy {
  readonly kind: StrategyName
  /** Where a tenant's tables live, on host `host` (named `hostName`); `isolation` is the tenant's own place, if any (strategy `shared`). */
  target: (key: string, hostName: string, host: string, isolation?: TenantIsolation | null) => TenantTarget
  exists: (target: TenantTarget) => Promise<boolean>
  /** Makes the database or schema; says whether it came from the template (already migrated). */
  create: (target: TenantTarget) => Promise<{ fromTemplate: boolean }>
  drop: (target: TenantTarget) => Promise<void>
  /** Waits for background work (spare databases being cloned). */
  idle: () => Promise<void>
  close: () => Promise<void>
}

export interface StrategyOptions {
  prefix: string
  suffix: string
  /** Template database to clone (strategy `database`); null to always run migrations. */
  template: string | null
  /** Spare databases kept cloned from the template on each host (strategy `database`). */
  spares: number
  /** The tenant migrations the template is kept at. */
  migrator: TenantMigrator
  onError: (error: Error) => void
}

/** One PostgreSQL database per tenant; `host` is a server URL. New databases are cloned from a template when possible. */
export function databaseStrategy (options: StrategyOptions): DatabaseStrategy {
  const spares = options.template === null
    ? null
    : new SpareDatabases({ prefix: options.prefix, template: options.template, count: options.spares, migrator: options.migrator, onError: options.onError })
  return {
    kind: 'database',
    target (key, hostName, host) {
      const name = tenantDatabaseName(key, options.prefix, options.suffix)
      const url = databaseUrl(host, name)
      return { id: url, url, schema: null, name, server: host, host: hostName, key }
    },
    exists: async (target) => await databaseExists(target.server, target.name),
    async create (target) {
      if (options.template !== null && spares !== null) {
        try {
          await ensureTemplate(target.server, options.template, options.migrator)
          if (await spares.claim(target.server, target.name)) return { fromTemplate: true }
          await createDatabase(target.server, target.name, options.template)
          return { fromTemplate: true }
        } catch (error) {
          // A database of that name appearing meanwhile is a real conflict, not a template problem.
          if (pgCode(error) === PG.DUPLICATE_DATABASE) throw error
          forgetTemplate(target.server, options.template)
        }
      }
      await createDatabase(target.server, target.name)
      return { fromTemplate: false }
    },
    drop: async (target) => await dropDatabase(target.server, target.name),
    idle: async () => { await spares?.idle() },
    close: async () => { await spares?.close() }
  }
}

/** One schema per tenant inside one database; `host` is that database's URL. Migrations build each schema. */
export function schemaStrategy (options: StrategyOptions): DatabaseStrategy {
  return {
    kind: 'schema',
    target (key, hostName, host) {
      const name = tenantDatabaseName(key, options.prefix, options.suffix)
      return { id: `${host}#${name}`, pool: host, url: host, schema: name, name, server: host, host: hostName, key }
    },
    exists: async (target) => await withServer(target.url, async (c) =>
      (await c.query('select 1 from pg_namespace where nspname = $1', [target.name])).rowCount === 1),
    async create (target) {
      await withServer(target.url, async (c) => { await c.query(`create schema ${quoteIdent(target.name)}`) })
      return { fromTemplate: false }
    },
    drop: async (target) => {
      await withServer(target.url, async (c) => { await c.query(`drop schema if exists ${quoteIdent(target.name)} cascade`) })
    },
    idle: async () => {},
    close: async () => {}
  }
}
