import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

/** The central copy of a synced user (the SyncMaster side of resource syncing). */
export const CentralUserEntity = defineEntity({
  name: 'CentralUser',
  tableName: 'users',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    id: p.integer().primary().autoincrement(),
    globalId: p.string().length(64).unique(),
    name: p.string().length(255),
    email: p.string().length(255).unique(),
    password: p.string().length(255),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type CentralUserRecord = InferEntity<typeof CentralUserEntity>
