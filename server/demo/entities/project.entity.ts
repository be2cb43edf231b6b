import { defineEntity, p, type InferEntity } from '@mikro-orm/core'

/** The demo's business table: a tenant's projects, kept in the tenant's own database. */
export const ProjectEntity = defineEntity({
  name: 'Project',
  tableName: 'projects',
  properties: {
    id: p.integer().primary().autoincrement(),
    title: p.string().length(255),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type ProjectRecord = InferEntity<typeof ProjectEntity>
