import { ProjectEntity } from './project.entity.js'
import { TenantUserCopyEntity } from './user.entity.js'

export { ProjectEntity, TenantUserCopyEntity }

/** Every entity of a tenant database that fastify-tenancy ships. */
export const tenantEntities = [TenantUserCopyEntity, ProjectEntity]
