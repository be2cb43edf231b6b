import type { DatabaseStrategy } from '../strategy.js'
import { deleteTenantRows } from './shared-schema.js'
import type { ResolvedSharedOptions } from './shared-options.js'

/** The pool id every tenant shares in strategy `shared` (never evicted for one tenant). */
export const SHARED_POOL_ID = 'fastify-tenancy:shared'

/**
 * Strategy `shared`: every tenant's rows in the same tables, told apart by
 * `tenant_key` and kept apart by row-level security. A tenant has no database
 * of its own: creating one makes only its central row (the shared tables are
 * migrated once for all tenants), and deleting one removes its rows in batches.
 */
export function sharedStrategy (options: ResolvedSharedOptions): DatabaseStrategy {
  return {
    kind: 'shared',
    target: (key, hostName) => ({
      id: SHARED_POOL_ID,
      url: options.url,
      schema: options.schema,
      name: options.schema,
      server: options.centralUrl,
      host: hostName,
      key
    }),
    // Nothing of a tenant's own exists before its rows do.
    exists: async () => false,
    // Already at the newest migration: the shared tables are migrated once for every tenant.
    create: async () => ({ fromTemplate: true }),
    drop: async (target) => { await deleteTenantRows(options, target.key, options.deleteBatch) },
    idle: async () => {},
    close: async () => {}
  }
}
