import { defineEntity, p, type InferEntity } from '@mikro-orm/core'
import { DEFAULT_CENTRAL_SCHEMA } from './schema.js'

/** The permissions an admin role can hold. */
export const PERMISSIONS = ['manage_tenants', 'manage_tenant_groups', 'manage_users', 'manage_admins', 'impersonate_users', 'move_tenants'] as const
export type Permission = typeof PERMISSIONS[number]

export const RoleEntity = defineEntity({
  name: 'Role',
  tableName: 'admin_roles',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    id: p.integer().primary().autoincrement(),
    name: p.string().length(63).unique(),
    permissions: p.array<Permission>().columnType('text[]').default('{}')
  }
})
export type RoleRecord = InferEntity<typeof RoleEntity>

/** A landlord operator who signs in to the admin panel. */
export const AdminEntity = defineEntity({
  name: 'Admin',
  tableName: 'admins',
  schema: DEFAULT_CENTRAL_SCHEMA,
  properties: {
    id: p.uuid().primary(),
    email: p.string().length(255).unique(),
    name: p.string().length(255),
    passwordHash: p.string().length(255),
    active: p.boolean().default(true),
    roles: () => p.manyToMany(RoleEntity).pivotTable('admin_role_assignments').joinColumn('admin_id').inverseJoinColumn('role_id'),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastLoginAt: p.datetime().nullable()
  }
})
export type AdminRecord = InferEntity<typeof AdminEntity>
