import { RlsGlobalKeysError, RlsMissingError, RlsUnsafeRoleError } from '../../errors.js'
import { withServer } from '../tenant-database.js'
import { inspectTables, isProtected, readSecret } from './rls-policies.js'
import { describeRisks, roleRisks, type RoleRisk } from './rls-role.js'
import { hardeningGaps } from './rls-hardening.js'
import { describeKeys, inspectKeys, tenantSafe, type KeyReport } from './tenant-keys.js'
import type { ResolvedSharedOptions } from './shared-options.js'

/** Everything `tenants:rls --check` looks at; the register-time check refuses the first four. */
export interface RlsCheck {
  schema: string
  /** Tenant tables without their policy (or without RLS forced). */
  missing: string[]
  /** Uniques and foreign keys that hold across tenants (tenant-keys.ts), described. */
  globalKeys: string[]
  /** Per-tenant foreign keys left NOT VALID: rows made before point at another tenant's rows. */
  unvalidated: string[]
  /** What the app role could do past the policies (rls-role.ts), each with its fix. */
  unsafeRole: string[]
  /** What only a superuser can take from the app role, not taken yet (rls-hardening.ts); reported, not refused. */
  hardening: string[]
}

type Where = Pick<ResolvedSharedOptions, 'url' | 'centralUrl' | 'centralRole' | 'schema'>

interface Findings { missing: string[], keys: KeyReport, risks: RoleRisk[], hardening: string[] }

async function inspect (options: Where, hardening: boolean): Promise<Findings> {
  const appRole = decodeURIComponent(new URL(options.url).username)
  const found = await withServer(options.centralUrl, async (client) => {
    const all = await inspectTables(client, options.schema)
    const keys = await inspectKeys(client, options.schema)
    return { missing: all.filter((t) => !isProtected(t)).map((t) => t.table), keys, hardening: hardening ? await hardeningGaps(client, appRole) : [] }
  })
  const risks = await withServer(options.url, async (client) => await roleRisks(client, options.schema, options.centralRole))
  return { ...found, risks }
}

/** Reads what strategy `shared` needs of the shared tables and of the app role. Changes nothing. */
export async function checkRls (options: Where): Promise<RlsCheck> {
  const found = await inspect(options, true)
  const appRole = decodeURIComponent(new URL(options.url).username)
  return {
    schema: options.schema,
    missing: found.missing,
    globalKeys: describeKeys(found.keys),
    unvalidated: found.keys.unvalidated.map((f) => `${f.table}: ${f.name}`),
    unsafeRole: found.risks.length === 0 ? [] : [`the role "${appRole}" ${describeRisks(found.risks)}`],
    hardening: found.hardening
  }
}

/**
 * Checked when the plugin registers in strategy `shared`: every tenant table
 * has its policy, no key holds across tenants, and the app role can be held
 * by the policies (rls-role.ts lists what it must not have). Returns the
 * secret that signs the tenant setting. Fail-closed: any doubt and the
 * plugin does not register.
 */
export async function assertRlsReady (options: ResolvedSharedOptions): Promise<string> {
  const found = await inspect(options, false)
  if (found.missing.length > 0) throw new RlsMissingError(options.schema, found.missing.join(', '))
  if (!tenantSafe(found.keys)) throw new RlsGlobalKeysError(options.schema, describeKeys(found.keys).join('; '))
  if (found.risks.length > 0) throw new RlsUnsafeRoleError(decodeURIComponent(new URL(options.url).username), describeRisks(found.risks))
  return await readSecret(options.centralUrl)
}
