import { MisconfigurationError } from '../errors.js'
import { UUID_PATTERN } from '../tenant.js'
import type { Bootstrapper } from './bootstrapper.js'
import { TenantStorage } from '../context/tenant-storage.js'

export { TenantStorage }

/** Gives the scope its tenant's storage folder (nothing is created on disk until the app writes). */
export function storageBootstrapper (base: string): Bootstrapper {
  return {
    name: 'storage',
    bootstrap (scope) {
      const key = scope.tenant.resourceKey
      if (typeof key !== 'string' || !UUID_PATTERN.test(key)) {
        scope.storage = null
        return
      }
      scope.storage = new TenantStorage(base, key)
    },
    revert (scope) {
      scope.storage = null
    }
  }
}

export function requireStorage (storage: TenantStorage | null, identifier: string): TenantStorage {
  if (storage === null) throw new MisconfigurationError(`Tenant "${identifier}" has no resource key, so it has no storage folder.`)
  return storage
}
