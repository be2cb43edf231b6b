import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

/** The pivot saying that a synced user exists in a tenant's database. */
export const TenantUserEntity = defineEntity({
  name: 'TenantUser',
  tableName: 'tenant_users',
  schema: DEFAULT_CENTRAL_SCHEMA,
  uniques: [{ properties: ['tenantKey', 'globalUserId'] }],
  properties: {
    id: p.integer().primary().autoincrement(),
    tenantKey: p.uuid(),
    globalUserId: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type TenantUserRecord = InferEntity<typeof TenantUserEntity>

/** The pivot's columns as a sync mapping: a users resource declared without a mapping uses it (sync/mapping.ts). */
export const TENANT_USERS_PIVOT = { table: 'tenant_users', tenantColumn: 'tenant_key', globalIdColumn: 'global_user_id' } as const
