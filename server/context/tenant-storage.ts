import { resolve, sep } from 'node:path'
import { StoragePathError } from '../errors.js'

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
