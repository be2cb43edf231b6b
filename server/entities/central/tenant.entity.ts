import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import type { TenantStatus } from '../../tenant.js'
import { DomainEntity } from './domain.entity.js'
import { TenantClusterEntity } from './tenant-cluster.entity.js'

/** The central `tenants` row; the ORM provider returns it as the request's tenant. */
export const TenantEntity = defineEntity({
  name: 'Tenant',
  tableName: 'tenants',
  properties: {
    key: p.uuid().primary(),
    identifier: p.string().length(63).unique(),
    resourceKey: p.uuid().unique().nullable(),
    name: p.string().length(255),
    status: p.string().length(20).$type<TenantStatus>().default('provisioning'),
    failureReason: p.text().nullable(),
    data: p.json<Record<string, unknown>>().default('{}'),
    cluster: () => p.manyToOne(TenantClusterEntity).fieldName('tenant_cluster_id').nullable(),
    databaseHost: p.string().length(63).nullable(),
    domains: () => p.oneToMany(DomainEntity).mappedBy('tenant'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type TenantRecord = InferEntity<typeof TenantEntity>
