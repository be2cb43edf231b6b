import { RlsMissingError, RlsUnsafeRoleError } from '../../errors.js'
import { readSecret, roleFacts, unprotectedTables } from './rls-policies.js'
import type { ResolvedSharedOptions } from './shared-options.js'

/**
 * Checked when the plugin registers in strategy `shared`: every tenant table
 * has its policy, and the app role can be held by them (no superuser, no
 * BYPASSRLS, owns no tenant table). Returns the secret that signs the tenant
 * setting. Fail-closed: any doubt and the plugin does not register.
 */
export async function assertRlsReady (options: ResolvedSharedOptions): Promise<string> {
  const missing = await unprotectedTables(options.centralUrl, options.schema)
  if (missing.length > 0) throw new RlsMissingError(options.schema, missing.join(', '))
  const app = await roleFacts(options.url, options.schema)
  if (app.superuser) throw new RlsUnsafeRoleError(app.role, 'is a superuser')
  if (app.bypassRls) throw new RlsUnsafeRoleError(app.role, 'has BYPASSRLS')
  if (app.owns.length > 0) throw new RlsUnsafeRoleError(app.role, `owns ${app.owns.join(', ')}`)
  return await readSecret(options.centralUrl)
}
