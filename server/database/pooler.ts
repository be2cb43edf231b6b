import type { EntitySchema } from '@mikro-orm/core'
import { InvalidOptionError } from '../errors.js'

export interface PoolingPlan {
  /** `database.pooler`: the pool_mode of the pooler in front of the database URLs. */
  pooler: 'none' | 'session' | 'transaction'
  /** The central URL and every host URL. */
  urls: string[]
  /** True when the instance follows changes made elsewhere with LISTEN (tenant cache, renames, maintenance). */
  listen: boolean
  /** URL that bypasses the pooler, for LISTEN (`database.directUrl`). */
  directUrl: string | null
  strategy: string
  tenantEntities: Array<EntitySchema<any, any>>
}

/**
 * Refuses, at register, configurations known to serve one tenant's data to
 * another or to go stale silently. Everything the library itself runs is
 * transaction-scoped (set_config(..., true), schema-qualified SQL, unnamed
 * statements), so only these remain:
 * - a session setting in a connection URL (`?options=-c search_path=...`)
 *   behind a transaction-mode pooler: the server connection carrying it is
 *   handed to other clients;
 * - LISTEN (the tenant cache, renames and maintenance follow other
 *   instances with it) through a transaction-mode pooler: notifications never
 *   arrive, so a renamed tenant is served stale and maintenance is missed;
 * - strategy `schema` with a tenant entity pinned to one schema: every tenant
 *   would read and write that one table.
 */
export function refuseLeakyPooling (plan: PoolingPlan): void {
  if (plan.pooler === 'transaction') {
    for (const url of plan.urls) {
      if (new URL(url).searchParams.has('options')) {
        throw new InvalidOptionError('database', 'has a URL with session settings (?options=...), which a transaction-mode pooler (database.pooler) hands to other clients with the server connection; remove them (the plugin sets what it needs per transaction)')
      }
    }
    if (plan.listen && plan.directUrl === null) {
      throw new InvalidOptionError('cache.listen', 'needs LISTEN (on by default, for the tenant cache, renames and maintenance), which a transaction-mode pooler (database.pooler) does not keep, so changes made elsewhere would go unnoticed: give database.directUrl (the central database, past the pooler), or set cache: { listen: false } if this instance must not follow other instances')
    }
  }
  if (plan.strategy === 'schema') {
    for (const entity of plan.tenantEntities) {
      const meta = (entity as { meta?: { schema?: string, className?: string } }).meta
      if (meta?.schema !== undefined && meta.schema !== '*') {
        throw new InvalidOptionError('tenantEntities', `has ${meta.className ?? 'an entity'} pinned to schema "${meta.schema}", which every schema tenant would share; remove its schema option`)
      }
    }
  }
}
