import type { DatabaseStrategy } from '../strategy.js'
import type { TenantTarget } from '../tenant-target.js'
import { databaseUrl, quoteIdent, tenantDatabaseName } from '../names.js'
import { databaseExists, dropDatabase, withServer } from '../tenant-database.js'
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
 * `tenants:isolate`), or a schema of its own in the shared tables' database
 * (`isolation: 'schema'`), keeps the shared tables' shape there: the same
 * tables, `tenant_key` column, policies and proof secret (a database: in a
 * schema named like the shared one). So the same entities, migrations and
 * statements serve it, and consolidating it back is a copy of rows. Its
 * database or schema is named like a database or schema tenant's; the app
 * role reaches it as it reaches the shared tables, and the central role owns
 * it as it owns them.
 */
export function sharedStrategy (options: ResolvedSharedOptions, naming: { prefix: string, suffix: string }): DatabaseStrategy {
  const isolated = (key: string, hostName: string, host: string): TenantTarget => {
    const name = tenantDatabaseName(key, naming.prefix, naming.suffix)
    const url = asRoleOn(options.url, host, name)
    return { id: url, url, ownerUrl: asRoleOn(options.centralUrl, host, name), schema: options.schema, name, server: host, host: hostName, key, isolation: 'database' }
  }
  // A schema of its own in the shared tables' database: a pool of its own too, whose ORM names that schema.
  const ownSchema = (key: string, hostName: string): TenantTarget => {
    const name = tenantDatabaseName(key, naming.prefix, naming.suffix)
    return { id: `${options.url}#${name}`, url: options.url, ownerUrl: options.centralUrl, schema: name, name, server: options.centralUrl, host: hostName, key, isolation: 'schema' }
  }
  return {
    kind: 'shared',
    target: (key, hostName, host, isolation) => isolation === 'database'
      ? isolated(key, hostName, host)
      : isolation === 'schema'
        ? ownSchema(key, hostName)
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
    exists: async (target) => {
      if (target.isolation === 'database') return await databaseExists(target.server, target.name)
      if (target.isolation === 'schema') return await withServer(target.server, async (c) => (await c.query('select 1 from pg_namespace where nspname = $1', [target.name])).rowCount === 1)
      return false
    },
    // Already at the newest migration: the shared tables are migrated once for every tenant (an isolated database is made by its move).
    create: async () => ({ fromTemplate: true }),
    drop: async (target) => {
      if (target.isolation === 'database') await dropDatabase(target.server, target.name)
      else if (target.isolation === 'schema') await withServer(target.server, async (c) => { await c.query(`drop schema if exists ${quoteIdent(target.name)} cascade`) })
      else await deleteTenantRows(options, target.key, options.deleteBatch)
    },
    idle: async () => {},
    close: async () => {}
  }
}
