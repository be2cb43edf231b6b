import { Migration20261122000001Central } from './Migration20261122000001_central.js'
import { Migration20261122000004ClusterInvariant } from './Migration20261122000004_cluster_invariant.js'
import { Migration20261122000003AdminSessions } from './Migration20261122000003_admin_sessions.js'
import { Migration20261122000002Sync } from './Migration20261122000002_sync.js'
import { Migration20261125010001TenantDeleting } from './Migration20261125010001_tenant_deleting.js'
import { Migration20261125010002TenantChangeRows } from './Migration20261125010002_tenant_change_rows.js'
import { Migration20261125020001SyncDelivery } from './Migration20261125020001_sync_delivery.js'
import { Migration20261125040001AdminSecurity } from './Migration20261125040001_admin_security.js'
import { Migration20261125040002AdminFleetRuns } from './Migration20261125040002_admin_fleet_runs.js'
import { Migration20261125050001Operations } from './Migration20261125050001_operations.js'
import { Migration20261125050002RenameLocks } from './Migration20261125050002_rename_locks.js'
import { Migration20261125060001NameLockBuckets } from './Migration20261125060001_name_lock_buckets.js'
import { Migration20261126010001RenameClock } from './Migration20261126010001_rename_clock.js'
import { Migration20261126010001TenantMoves } from './Migration20261126010001_tenant_moves.js'
import { Migration20261125070001TenancySchema } from './Migration20261125070001_tenancy_schema.js'
import type { Migration } from '@mikro-orm/migrations'
import { quoteIdent } from '../../server/database/names.js'
import { Migration20261126020001MigrationStates } from './Migration20261126020001_migration_states.js'
import { Migration20261206010001Rollouts } from './Migration20261206010001_rollouts.js'
import { Migration20261206020001MoveTenantsPermission } from './Migration20261206020001_move_tenants_permission.js'
import { Migration20261207010001TenantIsolation } from './Migration20261207010001_tenant_isolation.js'

/** Central migrations in the order they run, as written (run them through centralMigrationsIn); listed here so no folder scan is needed at run time. */
export const centralMigrations = [
  { name: 'Migration20261122000001_central', class: Migration20261122000001Central },
  { name: 'Migration20261122000002_sync', class: Migration20261122000002Sync },
  { name: 'Migration20261122000003_admin_sessions', class: Migration20261122000003AdminSessions },
  { name: 'Migration20261122000004_cluster_invariant', class: Migration20261122000004ClusterInvariant },
  { name: 'Migration20261125010001_tenant_deleting', class: Migration20261125010001TenantDeleting },
  { name: 'Migration20261125010002_tenant_change_rows', class: Migration20261125010002TenantChangeRows },
  { name: 'Migration20261125020001_sync_delivery', class: Migration20261125020001SyncDelivery },
  { name: 'Migration20261125040001_admin_security', class: Migration20261125040001AdminSecurity },
  { name: 'Migration20261125040002_admin_fleet_runs', class: Migration20261125040002AdminFleetRuns },
  { name: 'Migration20261125050001_operations', class: Migration20261125050001Operations },
  { name: 'Migration20261125050002_rename_locks', class: Migration20261125050002RenameLocks },
  { name: 'Migration20261125060001_name_lock_buckets', class: Migration20261125060001NameLockBuckets },
  // Before every migration after it: an installation made before moves its tables into the central schema first.
  { name: 'Migration20261125070001_tenancy_schema', class: Migration20261125070001TenancySchema },
  { name: 'Migration20261126010001_rename_clock', class: Migration20261126010001RenameClock },
  { name: 'Migration20261126010001_tenant_moves', class: Migration20261126010001TenantMoves },
  { name: 'Migration20261126020001_migration_states', class: Migration20261126020001MigrationStates },
  { name: 'Migration20261206010001_rollouts', class: Migration20261206010001Rollouts },
  { name: 'Migration20261206020001_move_tenants_permission', class: Migration20261206020001MoveTenantsPermission },
  { name: 'Migration20261207010001_tenant_isolation', class: Migration20261207010001TenantIsolation }
]

type MigrationClass = new (...args: any[]) => Migration
/** What the wrapper below calls on a migration (Migration's `up` is abstract in its type). */
interface RunnableMigration { up(): Promise<void> | void, down(): Promise<void> | void, addSql(sql: string): void }
type Runnable = new (...args: any[]) => RunnableMigration

/**
 * The central migrations for the central schema `schema`: each runs with
 * that schema as its search path (local to the migrations' transaction), so
 * the tables, sequences and functions it makes land there and the names it
 * uses mean ours. A migration that creates or replaces a function must give
 * it `set search_path = <schema>` itself (Migration20261125070001 set it on
 * the ones before): a trigger runs with the search path of whoever wrote.
 */
export function centralMigrationsIn (schema: string): Array<{ name: string, class: MigrationClass }> {
  const searchPath = `set local search_path to ${quoteIdent(schema)}`
  return centralMigrations.map(({ name, class: Base }) => ({
    name,
    class: class extends (Base as unknown as Runnable) {
      centralSchema (): string { return schema }
      override async up (): Promise<void> { this.addSql(searchPath); await super.up() }
      override async down (): Promise<void> { this.addSql(searchPath); await super.down() }
    } as unknown as MigrationClass
  }))
}
