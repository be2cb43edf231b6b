import { AdminEntity, RoleEntity } from './admin.entity.js'
import { DomainEntity } from './domain.entity.js'
import { TenantClusterEntity } from './tenant-cluster.entity.js'
import { TenantUserEntity } from './tenant-user.entity.js'
import { TenantResourceEntity } from './tenant-resource.entity.js'
import { TenantEntity } from './tenant.entity.js'
import { CentralUserEntity } from './user.entity.js'

export { AdminEntity, RoleEntity, DomainEntity, TenantClusterEntity, TenantUserEntity, TenantResourceEntity, TenantEntity, CentralUserEntity }
export { PERMISSIONS, type Permission } from './admin.entity.js'

/** Every entity of the central (landlord) database. */
export const centralEntities = [TenantEntity, DomainEntity, TenantClusterEntity, CentralUserEntity, TenantUserEntity, TenantResourceEntity, RoleEntity, AdminEntity]
