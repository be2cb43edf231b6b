// A tenant entity: each tenant's invoices live in that tenant's own database.
import { defineEntity, p } from '@mikro-orm/core'

export const Invoice = defineEntity({
  name: 'Invoice',
  tableName: 'invoices',
  properties: {
    id: p.integer().primary().autoincrement(),
    number: p.string(),
    customer: p.string(),
    totalCents: p.integer(),
    remindedAt: p.datetime().nullable()
  }
})
