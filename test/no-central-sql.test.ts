import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CENTRAL_TABLE_NAMES, type CentralTableName } from '../server/database/central-schema.js'

/**
 * Every central table has one owner module (or folder, ending in /) that runs
 * the SQL on it; everything else asks the owner. `joins` are the few other
 * files allowed to name the table, each with why: they change the owner's rows
 * in the same transaction as their own (a rule across both), so the SQL
 * cannot move without splitting that transaction.
 */
const OWNERS: Record<CentralTableName, { owner: string[], joins?: Record<string, string> }> = {
  tenants: {
    owner: ['server/lifecycle/'],
    joins: {
      'server/clusters/rules.ts': 'a tenant\'s cluster (tenant_cluster_id) changes under the cluster rule\'s locks',
      'server/clusters/tenant-clusters.ts': 'deleting a cluster releases its tenants in the same transaction',
      'server/moves/move-store.ts': 'a move holds the tenant and switches its database_host with the move\'s own row',
      'server/moves/tenant-swap.ts': 'a swap exchanges two held tenants\' identifiers in one transaction with their domains',
      'server/rollouts/rollout-ledger.ts': 'a rollout orders its tenants by a tenant field when it is recorded (read only)'
    }
  },
  domains: { owner: ['server/lifecycle/'], joins: { 'server/moves/tenant-swap.ts': 'a swap hands the domains to the copy in the same transaction as the identifiers' } },
  tenant_clusters: {
    owner: ['server/clusters/'],
    joins: {
      'server/lifecycle/tenants.ts': 'deleting a tenant locks its cluster to keep the parent rule',
      'server/lifecycle/tenant-listings.ts': 'the tenant list shows each tenant\'s cluster name (one query)'
    }
  },
  users: { owner: ['server/admin/users/user-queries.ts'] },
  tenant_users: { owner: ['server/admin/users/user-queries.ts'] },
  tenant_resources: { owner: ['server/sync/'] },
  // Admin accounts, roles and sessions: accounts and roles in admin-accounts.ts, sessions (which read their admin and roles) in sessions.ts.
  admins: { owner: ['server/admin/admins/admin-accounts.ts', 'server/admin/auth/sessions.ts'] },
  admin_roles: { owner: ['server/admin/admins/admin-accounts.ts', 'server/admin/auth/sessions.ts'] },
  admin_role_assignments: { owner: ['server/admin/admins/admin-accounts.ts', 'server/admin/auth/sessions.ts'] },
  admin_sessions: { owner: ['server/admin/auth/sessions.ts', 'server/admin/admins/admin-accounts.ts'] },
  admin_sign_in_failures: { owner: ['server/admin/auth/sign-in-throttle.ts'] },
  admin_audit_log: { owner: ['server/admin/audit/audit-log.ts'] },
  // Kept for upgrades; nothing writes it since "Migrate all" became a rollout.
  admin_fleet_runs: { owner: [] },
  tenant_former_names: { owner: ['server/renames/former-names.ts'], joins: { 'server/moves/tenant-swap.ts': 'a swap is not a rename: it clears the redirects its own identifier changes record, in the same transaction' } },
  fastify_tenancy_settings: { owner: ['server/renames/former-names.ts'] },
  tenant_maintenance: { owner: ['server/maintenance/maintenance-mode.ts'] },
  impersonation_tokens: { owner: ['server/impersonation/impersonation.ts'] },
  fastify_tenancy_sync_state: { owner: ['server/sync/versions.ts'] },
  fastify_tenancy_sync_inbox: { owner: ['server/sync/inbox.ts'] },
  fastify_tenancy_sync_outbox: { owner: ['server/sync/tenant-outbox.ts'] },
  // MikroORM's migrator keeps it; we only name it in its configuration.
  fastify_tenancy_migrations: { owner: ['server/database/central.ts', 'server/database/tenant-migrator.ts'] },
  tenant_moves: { owner: ['server/moves/move-store.ts'] },
  tenant_migration_states: { owner: ['server/lifecycle/migration-states.ts'] },
  tenant_rollouts: { owner: ['server/rollouts/rollout-ledger.ts'] },
  tenant_rollout_tenants: { owner: ['server/rollouts/rollout-ledger.ts'] }
}

/** Files that still run SQL on a central table they do not own, each with its reason (none: keep it so). */
const PENDING: Record<string, string> = {}

const NAMES = CENTRAL_TABLE_NAMES.join('|')
/** A central table named as raw SQL names it: `${t.tenants}`, `${this.tables.domains}`, `t.literal('...')`. */
const QUALIFIED = new RegExp(`\\$\\{[^}]*?\\.(${NAMES})\\}|\\.literal\\(['"](${NAMES})['"]\\)`, 'g')
/** A central table named bare after an SQL keyword. */
const BARE = new RegExp(`\\b(?:from|join|into|update|table)\\s+"?(${NAMES})\\b`, 'gi')

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

/** The code without its comments (a comment may say "removed from tenants"). */
function code (text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

/** The central tables a piece of code names in SQL. */
function tablesIn (text: string): Set<string> {
  const found = new Set<string>()
  for (const m of code(text).matchAll(QUALIFIED)) found.add((m[1] ?? m[2]) as string)
  for (const m of code(text).matchAll(BARE)) found.add((m[1] as string).toLowerCase())
  return found
}

function allowed (file: string, table: CentralTableName): boolean {
  const { owner, joins = {} } = OWNERS[table]
  return owner.some((o) => o.endsWith('/') ? file.startsWith(o) : file === o) || file in joins
}

test('the patterns find central tables as raw SQL names them, and not in other words', () => {
  /* eslint-disable no-template-curly-in-string -- SQL as the source writes it, `${...}` and all */
  for (const [sql, table] of [
    ['select count(*)::int as n from tenants t', 'tenants'], ['insert into domains (domain, tenant_key)', 'domains'],
    ['delete from ${this.t.admin_sessions} where id = ?', 'admin_sessions'], ['join ${run.tables.tenant_clusters} c on', 'tenant_clusters'],
    ['nextval(${t.literal(\'fastify_tenancy_sync_state\')})', 'fastify_tenancy_sync_state'], ['update "admins" set name = ?', 'admins']
  ] as const) {
    /* eslint-enable no-template-curly-in-string */
    assert.deepEqual([...tablesIn(sql)], [table], sql)
  }
  assert.deepEqual([...tablesIn('select 1 from tenant_data p join my_users u on u.id = p.user_id // from tenants')], [])
  assert.deepEqual([...tablesIn('tenants: tenants.map((t) => t.domains)')], [])
})

test('every central table has an owner, and every owner exists', () => {
  assert.deepEqual(Object.keys(OWNERS).sort(), [...CENTRAL_TABLE_NAMES].sort())
  for (const { owner, joins = {} } of Object.values(OWNERS)) {
    for (const path of [...owner, ...Object.keys(joins)]) assert.ok(existsSync(path), `${path} is gone: update the owner map`)
  }
  for (const path of Object.keys(PENDING)) assert.ok(existsSync(path), `${path} is gone: drop it from PENDING`)
})

test('no file but its owner runs SQL on a central table', () => {
  const offending: string[] = []
  const pendingStill: string[] = []
  for (const file of sources('server')) {
    // Migrations make the tables (a tenant migration's `users` is the tenant's own table, not ours).
    if (file.split('/').includes('migrations') || file === join('server', 'database', 'central-schema.ts')) continue
    for (const table of tablesIn(readFileSync(file, 'utf8'))) {
      if (allowed(file, table as CentralTableName)) continue
      if (file in PENDING) pendingStill.push(file)
      else offending.push(`${file} names ${table} (owner: ${OWNERS[table as CentralTableName].owner.join(', ')})`)
    }
  }
  assert.deepEqual(offending, [], 'ask the table\'s owner module (see OWNERS) instead of running SQL on its table')
  for (const file of Object.keys(PENDING)) assert.ok(pendingStill.includes(file), `${file} no longer runs SQL on central tables: drop it from PENDING`)
})

test('no module writes its own executor for central SQL: they use database/central-sql.ts', () => {
  const wrappers = sources('server').filter((file) => file !== join('server', 'database', 'central-sql.ts') && !file.startsWith(join('server', 'demo')) &&
    /getConnection\(\)\.execute\(\w+, params as any\[\], 'all'\)/.test(code(readFileSync(file, 'utf8'))))
  assert.deepEqual(wrappers, [], 'use centralSql(orm) from server/database/central-sql.ts')
})
