import { defineEntity, p, type InferEntity } from '@mikro-orm/core'

/** The pivot saying that a synced company exists in a tenant's database (the companies resource's own mapping). */
export const TenantCompanyEntity = defineEntity({
  name: 'TenantCompany',
  tableName: 'tenant_companies',
  properties: {
    tenantKey: p.uuid().primary(),
    globalCompanyId: p.string().length(64).primary()
  }
})
export type TenantCompanyRecord = InferEntity<typeof TenantCompanyEntity>
