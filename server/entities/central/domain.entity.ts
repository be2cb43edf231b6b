import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { TenantEntity } from './tenant.entity.js'

/** A whole hostname that identifies one tenant. */
export const DomainEntity = defineEntity({
  name: 'Domain',
  tableName: 'domains',
  properties: {
    id: p.integer().primary().autoincrement(),
    domain: p.string().length(253).unique(),
    tenant: () => p.manyToOne(TenantEntity).fieldName('tenant_key').deleteRule('cascade'),
    isPrimary: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type DomainRecord = InferEntity<typeof DomainEntity>
