import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import type { TenantStatus, TenantIsolation } from '../../tenant.js'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

// A tenant, its domains and its cluster refer to each other both ways, so
// they are defined in one module: split, they would import each other.
/** The central `tenants` row; the ORM provider returns it as the request's tenant. */
export const TenantEntity = defineEntity({
  name: 'Tenant',
  tableName: 'tenants',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    key: p.uuid().primary(),
    identifier: p.string().length(63).unique(),
    resourceKey: p.uuid().unique().nullable(),
    name: p.string().length(255),
    status: p.string().length(20).$type<TenantStatus>().default('provisioning'),
    failureReason: p.text().nullable(),
    data: p.json<Record<string, unknown>>().default('{}'),
    cluster: () => p.manyToOne(TenantClusterEntity).fieldName('tenant_cluster_id').nullable(),
    databaseHost: p.string().length(63).nullable(),
    /** 'database': a tenant of strategy shared isolated into a database of its own. */
    isolation: p.string().length(20).$type<TenantIsolation>().nullable(),
    /** Set while a move holds the tenant's requests (see server/moves/). */
    heldAt: p.datetime().nullable(),
    domains: () => p.oneToMany(DomainEntity).mappedBy('tenant'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type TenantRecord = InferEntity<typeof TenantEntity>

/** A whole hostname that identifies one tenant. */
export const DomainEntity = defineEntity({
  name: 'Domain',
  tableName: 'domains',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    id: p.integer().primary().autoincrement(),
    domain: p.string().length(253).unique(),
    tenant: () => p.manyToOne(TenantEntity).fieldName('tenant_key').deleteRule('cascade'),
    isPrimary: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date())
  }
})
export type DomainRecord = InferEntity<typeof DomainEntity>

/** A tenant group (Tenant Cluster) with at most one parent tenant, itself a member. */
export const TenantClusterEntity = defineEntity({
  name: 'TenantCluster',
  tableName: 'tenant_clusters',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    id: p.uuid().primary(),
    name: p.string().length(255),
    slug: p.string().length(255).unique(),
    description: p.text().nullable(),
    parentTenant: () => p.manyToOne(TenantEntity).fieldName('parent_tenant_id').nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date())
  }
})
export type TenantClusterRecord = InferEntity<typeof TenantClusterEntity>
