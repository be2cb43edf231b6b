import { Migration20261122000001Tenant } from '../../server/demo/migrations/tenant/Migration20261122000001_tenant.js'
import { ProjectEntity, TenantUserCopyEntity } from '../../server/demo/tenant-schema.js'
import { CentralUserEntity, type TenancyOptions } from '../../server/index.js'

export { ProjectEntity, TenantUserCopyEntity }

/** The test app's tenant entities: the demo's synced users and projects. */
export const tenantEntities = [TenantUserCopyEntity, ProjectEntity]

/** The test app's tenant migrations: the demo's first one (its users and projects tables). */
export const tenantMigrations = { migrationsList: [{ name: 'Migration20261122000001_tenant', class: Migration20261122000001Tenant }] }

/**
 * The tenant schema most tests run with, given through the public options as
 * any app gives its own (buildApp passes it unless a test gives its own).
 */
export const TEST_TENANT_SCHEMA: Pick<TenancyOptions, 'tenantEntities' | 'tenantMigrations'> = { tenantEntities, tenantMigrations }

/** Syncing of the test app's users: its bookkeeping tables (the tenant outbox) are then in every tenant's database. */
export const TEST_SYNC = { resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] }
