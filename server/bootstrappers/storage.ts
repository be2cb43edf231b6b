import { misuse } from '../misuse.js'
import { UUID_PATTERN } from '../tenant.js'
import type { Bootstrapper } from '../context/bootstrapper.js'
import { TenantStorage } from '../context/tenant-storage.js'

export { TenantStorage }

/** Gives the scope its tenant's storage folder (nothing is created on disk until the app writes). */
export function storageBootstrapper (base: string): Bootstrapper {
  // One per tenant object (the provider caches those): it holds only the base and the key.
  const storages = new WeakMap<object, TenantStorage | null>()
  return {
    name: 'storage',
    bootstrap (scope) {
      let storage = storages.get(scope.tenant)
      if (storage === undefined) {
        const key = scope.tenant.resourceKey
        storage = typeof key === 'string' && UUID_PATTERN.test(key) ? new TenantStorage(base, key) : null
        storages.set(scope.tenant, storage)
      }
      scope.storage = storage
    },
    revert (scope) {
      scope.storage = null
    }
  }
}

export function requireStorage (storage: TenantStorage | null, identifier: string): TenantStorage {
  if (storage === null) throw misuse.noStorageWithoutResourceKey(identifier)
  return storage
}
