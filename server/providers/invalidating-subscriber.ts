import type { EventSubscriber } from '@mikro-orm/core'
import { DomainEntity } from '../entities/central/domain.entity.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import { flushedTenantChanges } from './flushed-changes.js'
import type { TenantChange } from './invalidation.js'

/**
 * Drops the cached entries of the tenants this instance changes through the
 * ORM, as soon as it flushes (only those: the rest of the cache stays).
 * Inside a longer transaction that is before the commit; the row triggers'
 * NOTIFY, delivered at commit, drops them again.
 */
export function invalidatingSubscriber (forget: (change: TenantChange) => void, invalidate: () => void): EventSubscriber {
  const watched = new Set([TenantEntity.meta.className, DomainEntity.meta.className])
  return {
    afterFlush: (args) => {
      const changeSets = args.uow.getChangeSets()
      if (!changeSets.some((cs) => watched.has(cs.meta.className))) return
      const changes = flushedTenantChanges(changeSets)
      if (changes === null) invalidate()
      else for (const change of changes) forget(change)
    }
  }
}
