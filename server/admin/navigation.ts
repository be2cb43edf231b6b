import type { Permission } from '../entities/central/admin.entity.js'
import type { SignedInAdmin } from './sessions.js'

export interface NavItem {
  href: string
  label: string
  active: boolean
}

/** The admin areas, each behind its permission. */
const AREAS: Array<{ path: string, label: string, permission: Permission }> = [
  { path: '/tenants', label: 'Tenants', permission: 'manage_tenants' },
  { path: '/clusters', label: 'Tenant Groups', permission: 'manage_tenant_groups' },
  { path: '/users', label: 'Users', permission: 'manage_users' },
  { path: '/admins', label: 'Admins', permission: 'manage_admins' }
]

/** The navigation an admin sees: only the areas they may use. */
export function navigationFor (admin: SignedInAdmin, prefix: string, url: string): NavItem[] {
  return AREAS.filter((a) => admin.permissions.has(a.permission)).map((a) => ({
    href: prefix + a.path,
    label: a.label,
    active: url === prefix + a.path || url.startsWith(prefix + a.path + '/') || url.startsWith(prefix + a.path + '?')
  }))
}
