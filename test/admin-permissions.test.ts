import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { adminPlugin } from '../server/admin/index.js'
import { AdminClient, COOKIE_SECRET, csrfOf, makeAdmin } from './helpers/admin.js'
import { buildApp } from './helpers/app.js'
import { CentralUserEntity } from '../server/index.js'
import { TenantUserCopyEntity } from './helpers/tenant-schema.js'
import { PERMISSIONS, type Permission } from '../server/entities/central/admin.entity.js'

const SYNC = { sync: { mode: 'inline' as const, resources: [{ name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }] } }

interface AdminRoute { method: string, url: string, needs: string }

/** Every route the admin registers, with what it needs, collected as Fastify registers them. */
function collectRoutes (app: FastifyInstance, into: AdminRoute[]): void {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!route.url.startsWith('/admin') || route.url.startsWith('/admin/assets/')) return
    for (const method of methods) {
      if (method !== 'HEAD') into.push({ method, url: route.url, needs: String((route.config as { admin?: string } | undefined)?.admin ?? '?') })
    }
  })
}

/**
 * The permissions matrix: every page and JSON answer the admin serves is
 * opened by an admin with exactly the permission it declares (allowed) and
 * by one with every permission but that one (refused); every form is posted
 * by the latter (refused, nothing done). And an admin with every permission
 * but manage_tenant_groups finds no cluster data on any page they may open.
 */
test('every admin page and JSON answer is allowed with its permission and refused without it, and no cluster data shows without manage_tenant_groups', async (t) => {
  const routes: AdminRoute[] = []
  const { app } = await buildApp(t, { ...SYNC, identification: ['subdomain', 'domain'] }, async (app) => {
    collectRoutes(app, routes)
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  })

  // What the pages show: a cluster with a name and slug nobody could guess, its Parent Tenant, a user, a domain, and cluster entries in the audit log.
  const owner = await makeAdmin(app, [...PERMISSIONS])
  const ownerClient = new AdminClient(app)
  await ownerClient.signIn(owner.email, owner.password)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['acme.example.test'] })
  const globex = await app.tenancy.create({ identifier: 'globex', name: 'Globex' })
  const created = await ownerClient.post('/admin/clusters/new', { name: 'Zeta Secret Cluster', description: 'cluster-only words' }, { from: '/admin/clusters/new' })
  const clusterId = String(created.headers.location).split('/').pop() as string
  await ownerClient.post(`/admin/clusters/${clusterId}/attach`, { tenants: [acme.key] }, { from: `/admin/clusters/${clusterId}` })
  // A tenant edit that moves a tenant into the cluster: its audit entry's change names the cluster.
  await ownerClient.post(`/admin/tenants/${globex.key}/edit`, { identifier: 'globex', name: 'Globex', cluster: clusterId }, { from: `/admin/tenants/${globex.key}/edit` })
  const cluster = await app.tenancy.clusters.find(clusterId)
  assert.ok(cluster !== null && cluster.parentTenantId === acme.key)
  const userPage = await ownerClient.post('/admin/users/new', { name: 'Ada Lovelace', email: 'ada@example.test', password: 'analytical engine' }, { from: '/admin/users/new' })
  const userId = String(userPage.headers.location).split('/').pop() as string
  await ownerClient.post(`/admin/users/${userId}/attach`, { tenants: [acme.key] }, { from: `/admin/users/${userId}` })
  const domainId = (await app.tenancy.domains.list(acme))[0]?.id
  const adminId = owner.id
  // A rollout for the rollout pages to show (nothing pending: every tenant skipped).
  const rolloutId = String((await ownerClient.post('/admin/fleet/rollouts/new', {}, { from: '/admin/fleet/rollouts/new' })).headers.location).split('/').pop() as string

  const fill = (url: string): string => url
    .replace(/^\/admin\/clusters\/:id/, `/admin/clusters/${clusterId}`)
    .replace(/^\/admin\/users\/:id/, `/admin/users/${userId}`)
    .replace(/^\/admin\/admins\/:id/, `/admin/admins/${adminId}`)
    .replace(/^\/admin\/fleet\/rollouts\/:id/, `/admin/fleet/rollouts/${rolloutId}`)
    .replace(':key', acme.key)
    .replace(':tenant', acme.key)
    .replace(':id', String(domainId))
  const gets = routes.filter((r) => r.method === 'GET' && r.needs !== 'public')
  const posts = routes.filter((r) => r.method === 'POST' && r.needs !== 'public')
  assert.ok(gets.length >= 30, `the admin's GET routes were collected (${gets.length})`)
  for (const r of routes) assert.ok(r.needs === 'public' || r.needs === 'signed-in' || (PERMISSIONS as readonly string[]).includes(r.needs), `${r.method} ${r.url} declares what it needs (${r.needs})`)

  const clientWith = async (permissions: Permission[]): Promise<AdminClient> => {
    const admin = await makeAdmin(app, permissions)
    const client = new AdminClient(app)
    assert.equal((await client.signIn(admin.email, admin.password)).statusCode, 303)
    return client
  }
  const only = new Map<string, AdminClient>()
  const allBut = new Map<string, AdminClient>()
  for (const p of PERMISSIONS) {
    only.set(p, await clientWith([p]))
    allBut.set(p, await clientWith(PERMISSIONS.filter((x) => x !== p)))
  }
  const nobody = await clientWith([])

  const checked: string[] = []
  for (const r of gets) {
    const url = fill(r.url)
    if (r.needs === 'signed-in') {
      const res = await nobody.get(url)
      assert.ok(res.statusCode < 400, `${url} opens for any signed-in admin (${res.statusCode})`)
      checked.push(`${url}: any admin`)
      continue
    }
    const allowed = await (only.get(r.needs) as AdminClient).get(url)
    // The users area answers 503 when syncing is off; here it is on.
    assert.ok(allowed.statusCode < 400, `${url} opens with only ${r.needs} (got ${allowed.statusCode})`)
    const refused = await (allBut.get(r.needs) as AdminClient).get(url)
    assert.equal(refused.statusCode, 403, `${url} is refused without ${r.needs}`)
    assert.doesNotMatch(refused.body, /Zeta Secret Cluster|acme\.example\.test|Ada Lovelace/, `${url} refused shows nothing of what it holds`)
    checked.push(`${url}: ${r.needs}`)
  }
  for (const r of posts) {
    if (r.needs === 'signed-in') continue
    const url = fill(r.url)
    const client = allBut.get(r.needs) as AdminClient
    const token = csrfOf((await client.get('/admin')).body)
    const res = await client.post(url, {}, { csrf: token })
    assert.equal(res.statusCode, 403, `POST ${url} is refused without ${r.needs}`)
    checked.push(`POST ${url}: ${r.needs}`)
  }

  // Without manage_tenant_groups: every page this admin may open (with every other permission), and no cluster anywhere.
  const noClusters = allBut.get('manage_tenant_groups') as AdminClient
  const secrets = ['Zeta Secret Cluster', 'zeta-secret-cluster', clusterId, 'cluster-only words', 'cluster.attach', 'cluster.create', 'Tenant Cluster']
  for (const r of gets) {
    if (r.needs === 'manage_tenant_groups') continue
    for (const url of [fill(r.url), `${fill(r.url)}?tab=users`, `${fill(r.url)}?tab=domains`]) {
      const res = await noClusters.get(url)
      // The roles page names what each permission covers, manage_tenant_groups included: words, not data.
      for (const secret of url.startsWith('/admin/admins/roles') ? secrets.filter((s) => s !== 'Tenant Cluster') : secrets) {
        assert.ok(!res.body.includes(secret), `${url} shows "${secret}" to an admin without manage_tenant_groups`)
      }
    }
  }
  // The audit log's count agrees with the rows shown: the hidden entries are not counted.
  const audit = await noClusters.get('/admin/audit')
  const shownRows = (audit.body.match(/<time>/g) ?? []).length
  assert.match(audit.body, new RegExp(`· ${shownRows} in all`), 'the count is of the entries shown')
  const ownerAudit = await ownerClient.get('/admin/audit')
  assert.ok((ownerAudit.body.match(/<time>/g) ?? []).length > shownRows, 'an admin with manage_tenant_groups sees the cluster entries')
  assert.ok(checked.length > 40)
})
