import type { Permission } from '../../entities/central/admin.entity.js'

/** What each permission lets an admin do, in the words the pages use. */
export const PERMISSION_LABELS: Record<Permission, string> = {
  manage_tenants: 'Tenants and the Fleet',
  manage_tenant_groups: 'Tenant Groups: Tenant Clusters and their Parent Tenants',
  manage_users: 'synced Users and the tenants they are in',
  manage_admins: 'Admins, roles and the audit log',
  impersonate_users: 'open a tenant\'s app as one of its users',
  move_tenants: 'move a tenant to another database host, export and import tenants (all of a tenant\'s data)'
}
