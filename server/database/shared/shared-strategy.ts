import type { DatabaseStrategy } from '../strategy.js'
import type { TenantTarget } from '../tenant-target.js'
import { databaseUrl, tenantDatabaseName } from '../names.js'
import { databaseExists, dropDatabase } from '../tenant-database.js'
import { deleteTenantRows } from './shared-schema.js'
import type { ResolvedSharedOptions } from './shared-options.js'

/** The pool id every tenant shares in strategy `shared` (never evicted for one tenant). */
export const SHARED_POOL_ID = 'fastify-tenancy:shared'

/** `serverUrl`'s server and database `name`, logged in as `credentials`' role. */
function asRoleOn (credentials: string, serverUrl: string, name: string): string {
  const from = new URL(credentials)
  const url = new URL(databaseUrl(serverUrl, name))
  url.username = from.username
  url.password = from.password
  return url.toString()
}

/**
 * Strategy `shared`: every tenant's rows in the same tables, told apart by
 * `tenant_key` and kept apart by row-level security. A tenant has no database
 * of its own: creating one makes only its central row (the shared tables are
 * migrated once for all tenants), and deleting one removes its rows in batches.
 *
 * A tenant isolated into a database of its own (`isolation: 'database'`,
 * `tenants:isolate`) keeps the shared tables' shape there: the same schema,
 * `tenant_key` column, policies and proof secret. So the same entities,
 * migrations and statements serve it, and consolidating it back is a copy of
 * rows. Its database is named like a database tenant's, on its host; the app
 * role reaches it as it reaches the shared tables, and the central role
 * owns it as it owns them.
 */
export function sharedStrategy (options: ResolvedSharedOptions, naming: { prefix: string, suffix: string }): DatabaseStrategy {
  const isolated = (key: string, hostName: string, host: string): TenantTarget => {
    const name = tenantDatabaseName(key, naming.prefix, naming.suffix)
    const url = asRoleOn(options.url, host, name)
    return { id: url, url, ownerUrl: asRoleOn(options.centralUrl, host, name), schema: options.schema, name, server: host, host: hostName, key, isolation: 'database' }
  }
  return {
    kind: 'shared',
    target: (key, hostName, host, isolation) => isolation === 'database'
      ? isolated(key, hostName, host)
      : {
          id: SHARED_POOL_ID,
          url: options.url,
          ownerUrl: options.centralUrl,
          schema: options.schema,
          name: options.schema,
          server: options.centralUrl,
          host: hostName,
          key
        },
    // Nothing of a tenant's own exists in the shared tables before its rows do.
    exists: async (target) => target.isolation === 'database' ? await databaseExists(target.server, target.name) : false,
    // Already at the newest migration: the shared tables are migrated once for every tenant (an isolated database is made by its move).
    create: async () => ({ fromTemplate: true }),
    drop: async (target) => {
      if (target.isolation === 'database') await dropDatabase(target.server, target.name)
      else await deleteTenantRows(options, target.key, options.deleteBatch)
    },
    idle: async () => {},
    close: async () => {}
  }
}
