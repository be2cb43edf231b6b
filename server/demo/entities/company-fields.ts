import { p } from '@mikro-orm/core'

/** What a company has on both sides of syncing: its id here, its global id, and the synced attributes. */
export function companyFields () {
  return {
    id: p.integer().primary().autoincrement(),
    globalId: p.string().length(64).unique(),
    name: p.string().length(255),
    plan: p.string().length(32).default('free'),
    deletedAt: p.datetime().nullable()
  }
}
