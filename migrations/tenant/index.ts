import { Migration20261122000002TenantSync } from './Migration20261122000002_sync.js'

/**
 * fastify-tenancy's own tenant tables, in the order they run: only the
 * bookkeeping of resource syncing, run (before the app's migrations) when
 * syncing is configured. An app's tables come from its own migrations
 * (the `tenantMigrations` option), never from here.
 */
export const libraryTenantMigrations = [
  { name: 'Migration20261122000002_sync', class: Migration20261122000002TenantSync }
]

/** The tables those migrations make (not the app's: a diff of the app's entities leaves them out). */
export const libraryTenantTables = ['fastify_tenancy_sync_state', 'fastify_tenancy_sync_outbox'] as const
