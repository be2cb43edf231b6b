export { TenantClusterEntity, type TenantClusterRecord } from './tenant.entity.js'
