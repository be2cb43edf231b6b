import { EntitySchema, Utils } from '@mikro-orm/core'
import { AdminEntity, RoleEntity } from './admin.entity.js'
import { DomainEntity } from './domain.entity.js'
import { TenantClusterEntity } from './tenant-cluster.entity.js'
import { TenantUserEntity } from './tenant-user.entity.js'
import { TenantResourceEntity } from './tenant-resource.entity.js'
import { TenantEntity } from './tenant.entity.js'
import { CentralUserEntity } from './user.entity.js'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

export { AdminEntity, RoleEntity, DomainEntity, TenantClusterEntity, TenantUserEntity, TenantResourceEntity, TenantEntity, CentralUserEntity }
export { PERMISSIONS, type Permission } from './admin.entity.js'

/** Every entity of the central (landlord) database, in schema `tenancy`. */
export const centralEntities = [
  TenantEntity, DomainEntity, TenantClusterEntity, CentralUserEntity, TenantUserEntity, TenantResourceEntity, RoleEntity, AdminEntity
]

const copies = new Map<string, Array<EntitySchema<any, any>>>()

/**
 * The central entities mapped to the tables in `schema` (`database.schema`):
 * the shipped ones for the default `tenancy`, else copies under the same
 * names (MikroORM finds an entity by its name, so `em.find(TenantEntity)`
 * uses the copy). An app that passes its own `orm` with another schema
 * gives it these.
 */
export function centralEntitiesIn (schema: string): Array<EntitySchema<any, any>> {
  if (schema === DEFAULT_CENTRAL_SCHEMA) return centralEntities
  let list = copies.get(schema)
  if (list === undefined) {
    list = centralEntities.map((entity) => EntitySchema.fromMetadata({ ...Utils.copy(entity.meta, false), schema } as any) as EntitySchema<any, any>)
    copies.set(schema, list)
  }
  return list
}
