import type { MikroORM } from '@mikro-orm/postgresql'
import type { ProviderDriver, SqlExecutor, TenantProvider } from './provider.js'
import { ormProvider } from './orm-provider.js'
import { databaseProvider } from './database-provider.js'
import { misuse } from '../misuse.js'
import { centralSchemaOf } from '../database/central-schema.js'
import { centralSql } from '../database/central-sql.js'

export type ProviderConfig =
  | { driver: 'orm', entity?: unknown }
  | { driver: 'database', table?: string, domainsTable?: string | null, resourceKeyColumn?: string | null }
  | { driver: string, [option: string]: unknown }

/** The provider the options name: a shipped driver, or one the app registered in `providerDrivers`. */
export function makeProvider (config: ProviderConfig, drivers: Record<string, ProviderDriver>, orm: MikroORM): TenantProvider {
  const execute: SqlExecutor = centralSql(orm)
  if (config.driver === 'orm') return ormProvider({ orm, entity: (config as { entity?: any }).entity })
  if (config.driver === 'database') {
    const c = config as { table?: string, domainsTable?: string | null, resourceKeyColumn?: string | null }
    // Our own tables by default, in the central schema of the options.
    const schema = centralSchemaOf(orm)
    return databaseProvider({ execute, table: c.table ?? `${schema}.tenants`, domainsTable: c.domainsTable === undefined ? `${schema}.domains` : c.domainsTable, resourceKeyColumn: c.resourceKeyColumn })
  }
  const driver = drivers[config.driver] as ProviderDriver
  const provider = driver(config as Record<string, unknown>, { orm, execute })
  for (const method of ['byIdentifier', 'byKey', 'byResourceKey'] as const) {
    if (typeof provider?.[method] !== 'function') throw misuse.incompleteProvider(config.driver, method)
  }
  return provider
}
