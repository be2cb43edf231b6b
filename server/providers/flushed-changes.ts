import type { ChangeSet } from '@mikro-orm/core'
import { DomainEntity } from '../entities/central/domain.entity.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import type { TenantChange } from './invalidation.js'

const text = (value: unknown): string[] => typeof value === 'string' ? [value] : []
const keyOf = (ref: unknown): string[] => {
  if (typeof ref === 'string') return [ref]
  if (typeof ref === 'object' && ref !== null) return text((ref as { key?: unknown }).key)
  return []
}

/**
 * What an ORM flush changed in `tenants` and `domains`, as the row triggers
 * would say it (old and new values), so this instance forgets those entries
 * at once instead of waiting for its NOTIFY. Null when a change of a watched
 * entity cannot be read (forget everything then).
 */
export function flushedTenantChanges (changeSets: ReadonlyArray<ChangeSet<any>>): TenantChange[] | null {
  const changes: TenantChange[] = []
  for (const cs of changeSets) {
    const name = cs.meta.className
    if (name !== TenantEntity.meta.className && name !== DomainEntity.meta.className) continue
    const now = cs.entity as Record<string, unknown>
    const before = (cs.originalEntity ?? {}) as Record<string, unknown>
    if (name === TenantEntity.meta.className) {
      const change = {
        keys: [...text(now.key), ...text(before.key)],
        identifiers: [...text(now.identifier), ...text(before.identifier)],
        resourceKeys: [...text(now.resourceKey), ...text(before.resourceKey)],
        domains: []
      }
      if (change.keys.length === 0) return null
      changes.push(change)
    } else {
      const change = {
        keys: [...keyOf(now.tenant), ...keyOf(before.tenant)],
        identifiers: [],
        resourceKeys: [],
        domains: [...text(now.domain), ...text(before.domain)]
      }
      if (change.keys.length === 0) return null
      changes.push(change)
    }
  }
  return changes
}
