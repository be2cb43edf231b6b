import { createAppRole } from '../../server/database/shared/rls-policies.js'
import { migrateShared } from '../../server/database/shared/shared-schema.js'
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
 * per server), the shared tables migrated with their policies. Returns the
 * `shared` plugin options.
 */
export async function prepareShared (central: CentralDatabase, schema = 'tenant_shared'): Promise<{ url: string, schema: string, centralRole: string }> {
  try {
    await createAppRole(central.url, APP_ROLE, APP_PASSWORD)
  } catch (error) {
    // Two test files making the role at once: the other one won.
    if (!['42710', '23505'].includes((error as { code?: string }).code ?? '')) throw error
  }
  const centralRole = decodeURIComponent(new URL(central.url).username)
  await migrateShared({ centralUrl: central.url, schema, centralRole, appRole: APP_ROLE })
  return { url: asRole(central.url, APP_ROLE, APP_PASSWORD), schema, centralRole }
}
