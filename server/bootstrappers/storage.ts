import { resolve, sep } from 'node:path'
import { MisconfigurationError, StoragePathError } from '../errors.js'
import { UUID_PATTERN } from '../tenant.js'
import type { Bootstrapper } from './bootstrapper.js'

/** A tenant's own folder, under the storage root, named by its resource key. */
export class TenantStorage {
  private readonly base: string
  private readonly resourceKey: string
  private resolved: string | null = null

  constructor (base: string, resourceKey: string) {
    this.base = base
    this.resourceKey = resourceKey
  }

  /** The tenant's folder (resolved on first use: most requests never touch storage). */
  get root (): string {
    this.resolved ??= resolve(this.base, this.resourceKey)
    return this.resolved
  }

  /** The absolute path of `relative` inside the tenant's folder; refuses any path that leaves it. */
  path (relative: string): string {
    if (relative.includes('\u0000')) throw new StoragePathError(relative.replaceAll('\u0000', '\\0'))
    const full = resolve(this.root, relative)
    if (full !== this.root && !full.startsWith(this.root + sep)) throw new StoragePathError(relative)
    return full
  }
}

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
