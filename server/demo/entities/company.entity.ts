import { defineEntity, p, type InferEntity } from '@mikro-orm/core'

/** A company inside one tenant's database (the Syncable side); `notes` belong to the tenant and are not synced. */
export const CompanyEntity = defineEntity({
  name: 'Company',
  tableName: 'companies',
  properties: {
    id: p.integer().primary().autoincrement(),
    globalId: p.string().length(64).unique(),
    name: p.string().length(255),
    plan: p.string().length(32).default('free'),
    notes: p.text().nullable(),
    deletedAt: p.datetime().nullable()
  }
})
export type CompanyRecord = InferEntity<typeof CompanyEntity>
