import { defineEntity, p, type InferEntity } from '@mikro-orm/core'

/** The central row of a synced company (the SyncMaster side); `deletedAt` makes it soft-deletable. */
export const CentralCompanyEntity = defineEntity({
  name: 'CentralCompany',
  tableName: 'companies',
  properties: {
    id: p.integer().primary().autoincrement(),
    globalId: p.string().length(64).unique(),
    name: p.string().length(255),
    plan: p.string().length(32).default('free'),
    deletedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type CentralCompanyRecord = InferEntity<typeof CentralCompanyEntity>
