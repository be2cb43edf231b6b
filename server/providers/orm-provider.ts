import type { EntitySchema } from '@mikro-orm/core'
import type { MikroORM } from '@mikro-orm/postgresql'
import { misuse } from '../misuse.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import type { Tenant } from '../tenant.js'
import { UUID_PATTERN } from '../tenant.js'
import type { TenantProvider } from './provider.js'

export interface OrmProviderOptions {
  orm: MikroORM
  /** The tenant entity; it needs `key` and `identifier`, and `resourceKey` for resource lookups. */
  entity?: EntitySchema<any, any>
}

/** Loads tenants as MikroORM entities of the central database. */
export function ormProvider (options: OrmProviderOptions): TenantProvider {
  const entity = options.entity ?? TenantEntity
  const meta = options.orm.getMetadata().find(entity.meta.className)
  if (meta === undefined) throw misuse.providerEntityUnknown(entity.meta.className)
  const hasResourceKey = meta.properties.resourceKey !== undefined
  const hasDomains = meta.properties.domains !== undefined

  const findOne = async (where: Record<string, unknown>): Promise<Tenant | null> => {
    const em = options.orm.em.fork({ clear: true, useContext: false })
    return await em.findOne(entity, where) as Tenant | null
  }

  return {
    name: 'orm',
    byIdentifier: async (identifier) => await findOne({ identifier }),
    byKey: async (key) => UUID_PATTERN.test(key) ? await findOne({ key }) : null,
    byResourceKey: async (resourceKey) => {
      if (!hasResourceKey) throw misuse.noResourceKeyProperty(meta.className)
      return UUID_PATTERN.test(resourceKey) ? await findOne({ resourceKey }) : null
    },
    ...(hasDomains ? { byDomain: async (domain: string) => await findOne({ domains: { domain } }) } : {})
  }
}
