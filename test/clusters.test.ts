import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { sql } from './helpers/database.js'
import { TenantClusterEntity, TenantEntity, type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'
import type { FastifyInstance } from 'fastify'

async function tenants (app: FastifyInstance, ...identifiers: string[]): Promise<Tenant[]> {
  const made: Tenant[] = []
  for (const identifier of identifiers) made.push(await app.tenancy.create({ identifier }))
  return made
}

async function parentOf (url: string, clusterId: string): Promise<string | null> {
  return (await sql(url, 'select parent_tenant_id from tenancy.tenant_clusters where id = $1', [clusterId]))[0]?.parent_tenant_id ?? null
}

/** The rule, checked in SQL: clusters with tenants have a parent among them; clusters without have none. */
async function brokenClusters (url: string): Promise<unknown[]> {
  return await sql(url, `
    select c.id from tenancy.tenant_clusters c
     where (exists (select 1 from tenancy.tenants t where t.tenant_cluster_id = c.id) and c.parent_tenant_id is null)
        or (c.parent_tenant_id is not null and not exists (select 1 from tenancy.tenants t where t.key = c.parent_tenant_id and t.tenant_cluster_id = c.id))`)
}

const STRATEGIES = ['database', 'shared'] as const

for (const strategy of STRATEGIES) {
  test(`[${strategy}] a cluster gets a unique slug from its name, and the first tenant attached becomes its Parent Tenant`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b] = await tenants(app, 'alpha', 'bravo')
    const one = await app.tenancy.clusters.create({ name: 'North America', description: 'US and Canada' })
    const two = await app.tenancy.clusters.create({ name: 'North  America!' })
    assert.equal(one.slug, 'north-america')
    assert.equal(two.slug, 'north-america-2')
    await app.tenancy.clusters.attach(one.id, [a!.key, b!.key])
    assert.equal(await parentOf(central.url, one.id), a!.key)
    assert.deepEqual((await app.tenancy.clusters.tenantsOf(one.id)).map((x) => x.identifier), ['alpha', 'bravo'])
    assert.equal(await app.tenancy.clusters.isClusterManager(a!), true)
    assert.equal(await app.tenancy.clusters.isClusterManager(b!), false)
    const list = await app.tenancy.clusters.list()
    assert.deepEqual(list.map((c) => [c.name, c.tenants, c.parentIdentifier]), [['North  America!', 0, null], ['North America', 2, 'alpha']])
  })

  test(`[${strategy}] the Parent Tenant cannot be detached while others remain, and the last tenant leaving clears the parent`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b] = await tenants(app, 'alpha', 'bravo')
    const c = await app.tenancy.clusters.create({ name: 'Europe' })
    await app.tenancy.clusters.attach(c.id, [a!.key, b!.key])
    await assert.rejects(app.tenancy.clusters.detach(c.id, a!.key), (e: any) => e.code === 'FST_TENANCY_CLUSTER_RULE' && /make another tenant the Parent Tenant first/.test(e.message) && e.statusCode === 409)
    assert.equal(await parentOf(central.url, c.id), a!.key)
    await app.tenancy.clusters.setParent(c.id, b!.key)
    await app.tenancy.clusters.detach(c.id, a!.key)
    assert.equal(await parentOf(central.url, c.id), b!.key)
    await app.tenancy.clusters.detach(c.id, b!.key)
    assert.equal(await parentOf(central.url, c.id), null)
    assert.deepEqual(await brokenClusters(central.url), [])
  })

  test(`[${strategy}] a parent must be a member, and moving a tenant follows the rules on both sides`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b, c] = await tenants(app, 'alpha', 'bravo', 'charlie')
    const east = await app.tenancy.clusters.create({ name: 'East' })
    const west = await app.tenancy.clusters.create({ name: 'West' })
    await app.tenancy.clusters.attach(east.id, [a!.key, b!.key])
    await assert.rejects(app.tenancy.clusters.setParent(east.id, c!.key), /is not a tenant of "East"/)
    // The parent of East cannot move away while bravo remains there.
    await assert.rejects(app.tenancy.clusters.move(a!.key, west.id), /Parent Tenant of "East"/)
    await app.tenancy.clusters.move(b!.key, west.id)
    assert.equal(await parentOf(central.url, west.id), b!.key, 'first in West becomes its parent')
    await app.tenancy.clusters.move(a!.key, west.id)
    assert.equal(await parentOf(central.url, east.id), null, 'East is empty and has no parent')
    assert.equal(await parentOf(central.url, west.id), b!.key)
    assert.deepEqual(await brokenClusters(central.url), [])
  })

  test(`[${strategy}] deleting a cluster releases its tenants; deleting a Parent Tenant with others remaining is refused`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b] = await tenants(app, 'alpha', 'bravo')
    const c = await app.tenancy.clusters.create({ name: 'Group' })
    await app.tenancy.clusters.attach(c.id, [a!.key, b!.key])
    if (strategy === 'shared') await app.tenancy.run(a!, async (scope) => { scope.em.create(ProjectEntity, { title: 'kept' }); await scope.em.flush() })
    await assert.rejects(app.tenancy.delete(a!), /make another tenant the Parent Tenant before deleting it/)
    assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.tenants where key = $1', [a!.key]))[0]?.n, 1, 'nothing was deleted')
    if (strategy === 'database') {
      assert.equal((await sql(central.url, 'select count(*)::int as n from pg_database where datname = $1', [app.tenancy.tenants.databaseName(a!)]))[0]?.n, 1, 'its database is still there')
    } else {
      // Strategy shared: no database of its own; its rows are what must still be there.
      assert.equal((await sql(central.url, 'select count(*)::int as n from tenant_shared.projects where tenant_key = $1', [a!.key]))[0]?.n, 1, 'its rows are still there')
    }
    await app.tenancy.delete(b!)
    await app.tenancy.delete(a!)
    assert.equal(await parentOf(central.url, c.id), null)
    const d = await app.tenancy.clusters.create({ name: 'Other' })
    const [x] = await tenants(app, 'xray')
    await app.tenancy.clusters.attach(d.id, [x!.key])
    await app.tenancy.clusters.delete(d.id)
    assert.equal((await sql(central.url, 'select tenant_cluster_id from tenancy.tenants where key = $1', [x!.key]))[0]?.tenant_cluster_id, null)
  })

  test(`[${strategy}] changes made through the ORM follow the same rules (the observer)`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b, c] = await tenants(app, 'alpha', 'bravo', 'charlie')
    const made = await app.tenancy.clusters.create({ name: 'Orm' })
    const em = app.tenancy.orm.em.fork()
    const cluster = await em.findOneOrFail(TenantClusterEntity, { id: made.id })
    const alpha = await em.findOneOrFail(TenantEntity, { key: a!.key })
    const bravo = await em.findOneOrFail(TenantEntity, { key: b!.key })
    alpha.cluster = cluster
    await em.flush()
    assert.equal(await parentOf(central.url, made.id), a!.key, 'the first tenant became the parent')
    bravo.cluster = cluster
    await em.flush()
    assert.equal(await parentOf(central.url, made.id), a!.key)

    const em2 = app.tenancy.orm.em.fork()
    const c2 = await em2.findOneOrFail(TenantClusterEntity, { id: made.id })
    c2.parentTenant = null
    await assert.rejects(em2.flush(), /must have a Parent Tenant/)
    const em3 = app.tenancy.orm.em.fork()
    const c3 = await em3.findOneOrFail(TenantClusterEntity, { id: made.id })
    c3.parentTenant = em3.getReference(TenantEntity, c!.key)
    await assert.rejects(em3.flush(), /is not a tenant of "Orm"/)
    const em4 = app.tenancy.orm.em.fork()
    const a4 = await em4.findOneOrFail(TenantEntity, { key: a!.key })
    a4.cluster = null
    await assert.rejects(em4.flush(), /Parent Tenant of "Orm"/)
    assert.equal(await parentOf(central.url, made.id), a!.key)
    assert.deepEqual(await brokenClusters(central.url), [])
  })

  test(`[${strategy}] the database refuses a raw SQL update that would break the rule`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const [a, b] = await tenants(app, 'alpha', 'bravo')
    const c = await app.tenancy.clusters.create({ name: 'Raw' })
    await app.tenancy.clusters.attach(c.id, [a!.key, b!.key])
    await assert.rejects(sql(central.url, 'update tenancy.tenant_clusters set parent_tenant_id = null where id = $1', [c.id]), /has tenants but no parent tenant/)
    await assert.rejects(sql(central.url, 'update tenancy.tenant_clusters set parent_tenant_id = null where id = $1', [c.id]), (e: any) => e.code === '23514')
    await assert.rejects(sql(central.url, 'update tenancy.tenants set tenant_cluster_id = null where key = $1', [a!.key]), /not one of its tenants/)
    await assert.rejects(sql(central.url, 'delete from tenancy.tenants where key = $1', [a!.key]), /no parent tenant|not one of its tenants/)
    // A change that keeps the rule within one transaction is fine: the check waits for the commit.
    await sql(central.url, `begin; update tenancy.tenant_clusters set parent_tenant_id = null where id = '${c.id}'; update tenancy.tenant_clusters set parent_tenant_id = '${b!.key}' where id = '${c.id}'; commit;`)
    assert.equal(await parentOf(central.url, c.id), b!.key)
  })

  test(`[${strategy}] 50 concurrent attach, detach, move and parent changes from separate connections leave every cluster whole`, async (t) => {
    const first = await buildApp(t, { strategy })
    const apps = [first.app, (await buildApp(t, { strategy }, () => {}, first.central)).app, (await buildApp(t, { strategy }, () => {}, first.central)).app]
    const members = await tenants(first.app, 'n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7')
    const target = await first.app.tenancy.clusters.create({ name: 'Busy' })
    const other = await first.app.tenancy.clusters.create({ name: 'Other' })
    await first.app.tenancy.clusters.attach(target.id, members.slice(0, 4).map((m) => m.key))
    let seed = 7
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const operations = Array.from({ length: 50 }, (_, i) => {
      const app = apps[i % apps.length] as FastifyInstance
      const tenant = members[random(members.length)] as Tenant
      switch (random(4)) {
        case 0: return async () => { await app.tenancy.clusters.attach(target.id, [tenant.key]) }
        case 1: return async () => { await app.tenancy.clusters.detach(target.id, tenant.key) }
        case 2: return async () => { await app.tenancy.clusters.move(tenant.key, random(2) === 0 ? other.id : target.id) }
        default: return async () => { await app.tenancy.clusters.setParent(target.id, tenant.key) }
      }
    })
    const results = await Promise.allSettled(operations.map(async (op) => { await op() }))
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    for (const r of refused) {
      assert.ok(['FST_TENANCY_CLUSTER_RULE'].includes(r.reason.code), `refused with a clear error, not ${String(r.reason.code)}: ${String(r.reason.message)}`)
      assert.ok(r.reason.statusCode < 500)
    }
    assert.ok(results.length - refused.length > 0, 'some operations went through')
    assert.deepEqual(await brokenClusters(first.central.url), [])
  })
}

test('the clusters API refuses bad input with coded errors, never SQL: a malformed id, an empty or over-long name, an unknown tenant; tenants may be named by identifier', async (t) => {
  const { app } = await buildApp(t)
  const [alpha, bravo] = await tenants(app, 'alpha', 'bravo')
  const clusters = app.tenancy.clusters
  const refused = async (work: () => Promise<unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(work, (error: Error & { code?: string, statusCode?: number }) => {
      assert.equal(error.code, code, error.message)
      assert.ok((error.statusCode ?? 500) < 500, error.message)
      assert.match(error.message, message)
      assert.doesNotMatch(error.message, /select|insert|update|tenancy\./i)
      return true
    })
  }
  for (const work of [() => clusters.tenantsOf('not-a-uuid'), () => clusters.attach('not-a-uuid', [alpha!.key]), () => clusters.update('x', { name: 'n' }), () => clusters.delete('1'), () => clusters.setParent('nope', alpha!.key)]) {
    await refused(work, 'FST_TENANCY_INVALID_CHANGE', /is not a cluster id/)
  }
  for (const name of ['', '   ', 'x'.repeat(256)]) await refused(async () => await clusters.create({ name }), 'FST_TENANCY_INVALID_CHANGE', /a cluster name is 1 to 255 characters/)
  const one = await clusters.create({ name: '  Europe  ' })
  assert.equal(one.name, 'Europe')
  await refused(async () => await clusters.update(one.id, { name: '' }), 'FST_TENANCY_INVALID_CHANGE', /1 to 255/)
  await refused(async () => await clusters.attach(one.id, ['nobody']), 'FST_TENANCY_TENANT_NOT_FOUND', /nobody/)
  // By identifier, as the not-found message invites.
  await clusters.attach(one.id, ['alpha', bravo!.key])
  assert.deepEqual((await clusters.tenantsOf(one.id)).map((x) => x.identifier), ['alpha', 'bravo'])
  await clusters.setParent(one.id, 'bravo')
  assert.equal(await clusters.isClusterManager(bravo!), true)
  await clusters.detach(one.id, 'alpha')
  assert.deepEqual((await clusters.tenantsOf(one.id)).map((x) => x.identifier), ['bravo'])
})
