import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { companyFields } from './company-fields.js'

/** The central row of a synced company (the SyncMaster side); `deletedAt` makes it soft-deletable. */
export const CentralCompanyEntity = defineEntity({
  name: 'CentralCompany',
  tableName: 'companies',
  properties: {
    ...companyFields(),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type CentralCompanyRecord = InferEntity<typeof CentralCompanyEntity>
