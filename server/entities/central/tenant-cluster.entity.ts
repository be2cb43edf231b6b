import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { TenantEntity } from './tenant.entity.js'

/** A tenant group (Tenant Cluster) with at most one parent tenant, itself a member. */
export const TenantClusterEntity = defineEntity({
  name: 'TenantCluster',
  tableName: 'tenant_clusters',
  properties: {
    id: p.uuid().primary(),
    name: p.string().length(255),
    slug: p.string().length(255).unique(),
    description: p.text().nullable(),
    parentTenant: () => p.manyToOne(TenantEntity).fieldName('parent_tenant_id').nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type TenantClusterRecord = InferEntity<typeof TenantClusterEntity>
