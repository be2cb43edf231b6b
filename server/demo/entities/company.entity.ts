import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { companyFields } from './company-fields.js'

/** A company inside one tenant's database (the Syncable side); `notes` belong to the tenant and are not synced. */
export const CompanyEntity = defineEntity({
  name: 'Company',
  tableName: 'companies',
  properties: {
    ...companyFields(),
    notes: p.text().nullable()
  }
})
export type CompanyRecord = InferEntity<typeof CompanyEntity>
