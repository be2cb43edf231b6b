import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

/**
 * The shared mapping of synced resources to tenants (one row per tenant,
 * resource type and global id), for resources that have no pivot of their own.
 */
export const TenantResourceEntity = defineEntity({
  name: 'TenantResource',
  tableName: 'tenant_resources',
  schema: DEFAULT_CENTRAL_SCHEMA,
  uniques: [{ properties: ['tenantKey', 'resourceType', 'globalId'] }],
  properties: {
    id: p.bigint().primary().autoincrement(),
    tenantKey: p.uuid(),
    resourceType: p.string().length(63),
    globalId: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type TenantResourceRecord = InferEntity<typeof TenantResourceEntity>
