import type { Permission } from '../../entities/central/admin.entity.js'
import type { SignedInAdmin } from '../auth/sessions.js'

export interface NavItem {
  href: string
  label: string
  active: boolean
}

export interface NavGroup {
  /** Heading of the group in the sidebar, or null for items without one. */
  label: string | null
  items: NavItem[]
}

export interface Crumb {
  label: string
  /** Null for the current page. */
  href: string | null
}

interface Area { path: string, label: string, permission: Permission | 'signed-in' }

/** The sidebar: the seed's "Multitenancy" group, then the operator areas; each behind its permission. */
const GROUPS: Array<{ label: string | null, areas: Area[] }> = [
  {
    label: 'Multitenancy',
    areas: [
      { path: '/tenants', label: 'Tenants', permission: 'manage_tenants' },
      { path: '/clusters', label: 'Tenant Clusters', permission: 'manage_tenant_groups' },
      { path: '/fleet', label: 'Fleet', permission: 'manage_tenants' }
    ]
  },
  {
    label: 'People',
    areas: [
      { path: '/users', label: 'Users', permission: 'manage_users' },
      { path: '/admins', label: 'Admins', permission: 'manage_admins' },
      { path: '/audit', label: 'Audit log', permission: 'manage_admins' }
    ]
  }
]

function isUnder (url: string, path: string): boolean {
  const bare = url.split('?')[0] ?? url
  return bare === path || bare.startsWith(path + '/')
}

function allowed (admin: SignedInAdmin, area: Area): boolean {
  return area.permission === 'signed-in' || admin.permissions.has(area.permission)
}

/** The navigation an admin sees: only the areas they may use, in their groups. */
export function navigationFor (admin: SignedInAdmin, prefix: string, url: string, known: ReadonlySet<string> = new Set()): NavGroup[] {
  return GROUPS.map((g) => ({
    label: g.label,
    items: g.areas.filter((a) => allowed(admin, a) && (known.size === 0 || known.has(prefix + a.path))).map((a) => ({
      href: prefix + a.path,
      label: a.label,
      active: isUnder(url, prefix + a.path)
    }))
  })).filter((g) => g.items.length > 0)
}

/** Dashboard › area › page, from the URL and the page's title (or the crumbs a page gives). */
export function breadcrumbsFor (prefix: string, url: string, title: string): Crumb[] {
  const home: Crumb = { label: 'Dashboard', href: prefix }
  const bare = url.split('?')[0] ?? url
  if (bare === prefix || bare === prefix + '/') return []
  const area = GROUPS.flatMap((g) => g.areas).find((a) => isUnder(url, prefix + a.path))
  if (area === undefined) return [home, { label: title, href: null }]
  if (bare === prefix + area.path) return [home, { label: area.label, href: null }]
  return [home, { label: area.label, href: prefix + area.path }, { label: title, href: null }]
}
