import { applyRls, createAppRole, readSecret } from '../../server/database/shared/rls-policies.js'
import { signProof } from '../../server/database/shared/tenant-proof.js'
import { withServer } from '../../server/database/tenant-database.js'
import { migrateShared } from '../../server/database/shared/shared-schema.js'
import { TenantMigrator } from '../../server/database/tenant-migrator.js'
import { appMigrationSet, librarySet, type TenantMigrationsOptions } from '../../server/database/migration-sets.js'
import { tenantMigrations } from './tenant-schema.js'
import type { CentralDatabase } from './database.js'

/** The app role the shared-strategy tests connect as: a plain login role (no superuser, no BYPASSRLS, owns nothing). */
export const APP_ROLE = 'fastify_tenancy_app'
const APP_PASSWORD = 'app-role-password'

/** `url` with another role's credentials. */
export function asRole (url: string, role: string, password: string): string {
  const u = new URL(url)
  u.username = role
  u.password = password
  return u.toString()
}

/**
 * Makes a central database ready for strategy `shared`: the app role (once
 * per server), the shared tables migrated with their policies (the test
 * app's, or `app.migrations`). Returns the `shared` plugin options.
 */
export async function prepareShared (central: CentralDatabase, schema = 'tenant_shared', app: { migrations?: TenantMigrationsOptions, sync?: boolean } = {}): Promise<{ url: string, schema: string, centralRole: string }> {
  try {
    await createAppRole(central.url, APP_ROLE, APP_PASSWORD)
  } catch (error) {
    // Two test files making the role at once: the other one won.
    if (!['42710', '23505'].includes((error as { code?: string }).code ?? '')) throw error
  }
  const centralRole = decodeURIComponent(new URL(central.url).username)
  // The app's tables (the test app's by default) and syncing's bookkeeping (unless sync: false), with their policies.
  const sets = [...(app.sync === false ? [] : [librarySet]), appMigrationSet(app.migrations ?? tenantMigrations)]
  const migrator = new TenantMigrator(sets)
  try {
    await migrateShared({ centralUrl: central.url, schema, centralRole, appRole: APP_ROLE }, migrator)
  } finally {
    await migrator.close()
  }
  return { url: asRole(central.url, APP_ROLE, APP_PASSWORD), schema, centralRole }
}

/**
 * A URL that sees one tenant's rows of the shared tables the way the app does:
 * the app role, and a tenant proof (good for an hour) that `sql()` (helpers/
 * database.ts) proves at the start of the transaction it wraps each text in,
 * with the shared schema first on the search_path. Row-level security filters
 * every statement, and inserts default to that tenant. Tests read and write
 * "a tenant's database" through it, as they do through a tenant database's URL.
 */
export async function tenantView (central: CentralDatabase, key: string, schema = 'tenant_shared'): Promise<string> {
  const proof = signProof(await readSecret(central.url), key, Date.now() / 1000 + 3600)
  const u = new URL(asRole(central.url, APP_ROLE, APP_PASSWORD))
  u.searchParams.set(TENANT_VIEW_PARAM, `${proof},${schema}`)
  return u.toString()
}

/** The URL parameter of a tenant view: `<proof>,<schema>` (read by `sql()`, never sent to the server). */
export const TENANT_VIEW_PARAM = 'fastify_tenancy_view'

/** Runs a tenant migration's statements in the shared schema (as the central role), then gives the new tables their policies. */
export async function sharedTables (central: CentralDatabase, statements: string[], schema = 'tenant_shared'): Promise<void> {
  for (const statement of statements) await withServer(central.url, async (c) => { await c.query(`set search_path to "${schema}"; ${statement}`) })
  await applyRls({ url: central.url, schema, centralRole: decodeURIComponent(new URL(central.url).username), appRole: APP_ROLE })
}
