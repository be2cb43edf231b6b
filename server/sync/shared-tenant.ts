import type { Tenant } from '../tenant.js'
import type { RunAsTenant } from '../context/tenant-scopes.js'
import { NoTenantContextError } from '../errors.js'
import type { AsTenant } from './copy-store.js'

/**
 * Strategy `shared`: the syncer's tenant-side statements (copies, outbox)
 * run in the tenant's context, so the shared driver names that tenant in each
 * statement and row-level security keeps them to its rows. A tenant that no
 * longer exists has no rows to reach.
 */
export function sharedAsTenant (byKey: (key: string) => Promise<Tenant | null>, runAsTenant: RunAsTenant): AsTenant {
  return async (key, fn) => {
    const tenant = await byKey(key)
    if (tenant === null) throw new NoTenantContextError(`Syncing for tenant ${key}, which no longer exists,`)
    return await runAsTenant(tenant, async () => await fn())
  }
}
