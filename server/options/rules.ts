import { InvalidOptionError } from '../errors.js'
import { refuseLeakyPooling } from '../database/pooler.js'
import type { ResolvedOptions } from './schema.js'

// Rules across options, which the schema cannot say. Each throws
// FST_TENANCY_INVALID_OPTION naming the option to change.

const SHIPPED_DRIVERS = ['orm', 'database']

/** Checks the resolved options against each other. */
export function checkRules (options: ResolvedOptions): void {
  const { database, provider, providerDrivers } = options
  // A database name is prefix + 32 hex characters of the key + suffix, and PostgreSQL cuts names at 63.
  if (database.prefix.length + database.suffix.length + 32 > 63) {
    throw new InvalidOptionError('database.prefix', 'and database.suffix together must leave room for the 32-character key in a 63-character name')
  }
  if (database.hosts[database.defaultHost] === undefined) {
    throw new InvalidOptionError('database.defaultHost', `must be one of database.hosts (${Object.keys(database.hosts).join(', ')})`)
  }
  for (const host of Object.keys(options.moves.replicationUrls)) {
    if (database.hosts[host] === undefined) throw new InvalidOptionError(`moves.replicationUrls.${host}`, `names no host of database.hosts (${Object.keys(database.hosts).join(', ')})`)
  }
  if (database.schema === options.queueSchema || database.schema === options.shared?.schema) {
    throw new InvalidOptionError('database.schema', `is "${database.schema}", the schema of ${database.schema === options.queueSchema ? 'the job queue (queueSchema)' : 'the shared tenant tables (shared.schema)'}; the central tables need a schema of their own`)
  }
  const migrations = options.tenantMigrations
  if (migrations !== null && migrations.path === undefined && migrations.pathTs === undefined && migrations.migrationsList === undefined) {
    throw new InvalidOptionError('tenantMigrations', 'needs `path` (and `pathTs` for TypeScript sources), a folder of migration files, or `migrationsList`')
  }
  if (options.strategy === 'shared' && options.shared === null) {
    throw new InvalidOptionError('shared', 'is required by strategy "shared": give at least { url } (the app role\'s URL of the shared tables\' database)')
  }
  if (options.strategy !== 'shared' && options.shared !== null) throw new InvalidOptionError('shared', 'is only for strategy "shared"')
  for (const name of Object.keys(providerDrivers)) {
    if (SHIPPED_DRIVERS.includes(name)) throw new InvalidOptionError(`providerDrivers.${name}`, 'is a shipped driver name; choose another')
  }
  if (!SHIPPED_DRIVERS.includes(provider.driver) && providerDrivers[provider.driver] === undefined) {
    throw new InvalidOptionError('provider.driver', `is "${provider.driver}", which is neither "orm", "database" nor a name in providerDrivers`)
  }
  // Settings that would serve one tenant's data to another, or go stale, behind a pooler.
  refuseLeakyPooling({
    pooler: database.pooler,
    urls: [database.url, ...Object.values(database.hosts)],
    // With `cache: false` the listener still follows maintenance and renames.
    listen: options.cache === false || options.cache.listen,
    directUrl: database.directUrl,
    strategy: options.strategy,
    tenantEntities: options.tenantEntities
  })
}
