export { DomainEntity, type DomainRecord } from './tenant.entity.js'
