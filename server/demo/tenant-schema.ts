import { fileURLToPath } from 'node:url'
import { ProjectEntity } from './entities/project.entity.js'
import { TenantUserCopyEntity } from './entities/tenant-user.entity.js'
import { CompanyEntity } from './entities/company.entity.js'

export { ProjectEntity, TenantUserCopyEntity, CompanyEntity }

/**
 * The demo's tenant schema, given to the plugin as any app gives its own:
 * its tenant entities (`tenantEntities`) and the folder of its tenant
 * migrations (`tenantMigrations`), which `fastify-tenancy migration:create`
 * writes to and every tenant is migrated from.
 */
export const demoTenantEntities = [TenantUserCopyEntity, ProjectEntity, CompanyEntity]

/** The folder of the demo's tenant migrations (next to this file, whatever the working folder). */
const folder = fileURLToPath(new URL('./migrations/tenant', import.meta.url))
export const demoTenantMigrations = { path: folder, pathTs: folder }
