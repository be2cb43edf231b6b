import { defineEntity, p, type InferEntity } from '@mikro-orm/core'

/** A user inside one tenant's database (the Syncable side of resource syncing); `role` is per tenant. */
export const TenantUserCopyEntity = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.integer().primary().autoincrement(),
    globalId: p.string().length(64).unique(),
    name: p.string().length(255),
    email: p.string().length(255).unique(),
    password: p.string().length(255),
    role: p.string().length(63).default('member'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type TenantUserCopyRecord = InferEntity<typeof TenantUserCopyEntity>
