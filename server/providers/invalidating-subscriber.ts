import type { EventSubscriber } from '@mikro-orm/core'
import { DomainEntity } from '../entities/central/domain.entity.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'

/**
 * Drops cached tenants as soon as this instance flushes a change to tenants
 * or domains through the ORM. Inside a longer transaction that is before the
 * commit; the database trigger's NOTIFY, delivered at commit, drops them again.
 */
export function invalidatingSubscriber (invalidate: () => void): EventSubscriber {
  const watched = new Set([TenantEntity.meta.className, DomainEntity.meta.className])
  return {
    afterFlush: (args) => {
      if (args.uow.getChangeSets().some((cs) => watched.has(cs.meta.className))) invalidate()
    }
  }
}
