import { test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { sql } from './helpers/database.js'
import { TenantResourceEntity } from '../server/index.js'
import { CentralCompanyEntity, CompanyEntity, TenantCompanyEntity, companiesResource } from '../server/demo/companies.js'
import { MODES, USERS, centralCompany, changeCentral, companies, companyWorld, type MappingName } from './helpers/companies.js'
import { until } from './helpers/poll.js'

for (const mode of MODES) {
  test(`[${mode}] a company attached while shouldSync said no gets its copy on its next save, and by resync`, async (t) => {
    const w = await companyWorld(t, mode, 'own pivot')
    const gid = await centralCompany(w.app, { name: 'Hidden', plan: 'private' })
    for (const tenant of [w.a, w.b]) await w.app.tenancy.sync!.attach('companies', gid, tenant)
    await w.settle()
    assert.deepEqual(await companies(w.db(w.a)), [], 'mapped, but not synced yet: no copy')

    // Its next save makes it syncable: each mapped tenant gets its copy, made as an attach makes it.
    await changeCentral(w.app, gid, { plan: 'pro', name: 'Shown' })
    await w.settle()
    for (const tenant of [w.a, w.b]) {
      assert.deepEqual(await companies(w.db(tenant)), [{ global_id: gid, name: 'Shown', plan: 'pro', notes: 'synced from the central database', deleted: false }])
    }
    assert.deepEqual(await companies(w.db(w.c)), [], 'a tenant without the mapping gets nothing')

    // resync mends a missing copy too (one deleted behind the syncer's back).
    await sql(w.db(w.a), 'delete from companies')
    await w.app.tenancy.sync!.resync('companies', gid)
    await w.settle()
    assert.equal((await companies(w.db(w.a)))[0]?.name, 'Shown')
  })

  test(`[${mode}] a save that only flips shouldSync (an unsynced property) makes the missing copies`, async (t) => {
    // `plan` is not synced here, but it decides whether the company syncs at all.
    const w = await companyWorld(t, mode, 'own pivot', { resources: [USERS, { ...companiesResource(), attributes: ['name'] }] })
    const gid = await centralCompany(w.app, { name: 'Quiet', plan: 'private' })
    await w.app.tenancy.sync!.attach('companies', gid, w.a)
    await w.settle()
    assert.deepEqual(await companies(w.db(w.a)), [])
    await changeCentral(w.app, gid, { plan: 'pro' })
    await w.settle()
    assert.deepEqual((await companies(w.db(w.a))).map((c) => [c.name, c.plan]), [['Quiet', 'pro']])
  })
}

test('creationDefaults and shouldSync get the same shape: the source row by property names, without its database-made id', async (t) => {
  const seen: Array<{ hook: string, row: Record<string, unknown> }> = []
  const base = companiesResource()
  const w = await companyWorld(t, 'inline', 'own pivot', {
    resources: [USERS, {
      ...base,
      creationDefaults: {
        tenant: (row) => { seen.push({ hook: 'creationDefaults.tenant', row }); return { notes: `from ${String(row.name)}` } },
        central: (row) => { seen.push({ hook: 'creationDefaults.central', row }); return {} }
      },
      shouldSync: (row) => { seen.push({ hook: 'shouldSync', row }); return row.plan !== 'private' }
    }]
  })
  const gid = await centralCompany(w.app, { name: 'Acme', plan: 'pro' })
  await w.app.tenancy.sync!.attach('companies', gid, w.a)
  await w.app.tenancy.run(w.b, async (scope) => {
    scope.em.create(CompanyEntity, { name: 'Made in B', plan: 'free', notes: 'b only' } as never)
    await scope.em.flush()
  })
  await w.settle()
  assert.equal((await companies(w.db(w.a)))[0]?.notes, 'from Acme', 'creationDefaults reads property names')
  const hooks = new Set(seen.map((s) => s.hook))
  assert.deepEqual([...hooks].sort(), ['creationDefaults.central', 'creationDefaults.tenant', 'shouldSync'])
  for (const { hook, row } of seen) {
    assert.equal(typeof row.globalId, 'string', `${hook} gets globalId by its property name`)
    assert.ok(!('global_id' in row) && !('deleted_at' in row), `${hook} gets no column names: ${Object.keys(row).join(', ')}`)
    assert.ok(!('id' in row), `${hook} gets no database-made local id`)
    assert.ok('deletedAt' in row && 'plan' in row && 'name' in row, `${hook} gets every property of its side: ${Object.keys(row).join(', ')}`)
  }
  const fromTenant = seen.find((s) => s.hook === 'creationDefaults.central')?.row
  assert.equal(fromTenant?.notes, 'b only', 'a tenant row comes with its own properties (tenant-only ones too)')
})

for (const mapping of ['own pivot', 'shared mapping'] as MappingName[]) {
  test(`[${mapping}] attaching to a deleted tenant is refused with a code and leaves nothing, through the API and through the ORM`, async (t) => {
    const w = await companyWorld(t, 'inline', mapping)
    const gid = await centralCompany(w.app, { name: 'Acme', plan: 'pro' })
    const gone = w.c
    await w.app.tenancy.delete(gone)
    const before = await w.mappingRows()
    await assert.rejects(w.app.tenancy.sync!.attach('companies', gid, gone), (e: any) => e.code === 'FST_TENANCY_TENANT_NOT_FOUND')
    await assert.rejects(w.app.tenancy.sync!.attach('companies', gid, { key: '00000000-0000-7000-8000-000000000000' }), (e: any) => e.code === 'FST_TENANCY_TENANT_NOT_FOUND')
    const em = w.app.tenancy.orm.em.fork()
    if (mapping === 'own pivot') em.create(TenantCompanyEntity, { tenantKey: gone.key, globalCompanyId: gid } as never)
    else em.create(TenantResourceEntity, { tenantKey: gone.key, resourceType: 'companies', globalId: gid } as never)
    await assert.rejects(em.flush(), (e: any) => e.code === 'FST_TENANCY_TENANT_NOT_FOUND')
    await w.settle()
    assert.deepEqual(await w.mappingRows(), before, 'no mapping row to nothing')
    // A live tenant still attaches.
    await w.app.tenancy.sync!.attach('companies', gid, w.a)
    await w.settle()
    assert.equal((await companies(w.db(w.a)))[0]?.name, 'Acme')
  })
}

for (const mode of MODES) {
  test(`[${mode}] bulk writes (nativeUpdate, query builder) do not sync, as documented; resync sends their result`, async (t) => {
    const w = await companyWorld(t, mode, 'own pivot')
    const gid = await centralCompany(w.app, { name: 'Before', plan: 'pro' })
    await w.app.tenancy.sync!.attach('companies', gid, w.a)
    await w.settle()
    const em = w.app.tenancy.orm.em.fork()
    await em.nativeUpdate(CentralCompanyEntity, { globalId: gid }, { name: 'Native' })
    await w.settle()
    assert.equal((await companies(w.db(w.a)))[0]?.name, 'Before', 'nativeUpdate reaches no copy')
    await em.createQueryBuilder(CentralCompanyEntity).update({ name: 'Builder' }).where({ globalId: gid }).execute()
    await w.app.tenancy.run(w.a, async (scope) => {
      await scope.em.nativeUpdate(CompanyEntity, { globalId: gid }, { plan: 'tenant-native' })
    })
    await w.settle()
    assert.equal((await companies(w.db(w.a)))[0]?.name, 'Before', 'a query-builder update reaches no copy')
    assert.deepEqual(await sql(w.central, 'select name, plan from companies'), [{ name: 'Builder', plan: 'pro' }], 'a tenant nativeUpdate stays in the tenant')
    await w.app.tenancy.sync!.resync('companies', gid)
    await w.settle()
    assert.deepEqual((await companies(w.db(w.a))).map((c) => [c.name, c.plan]), [['Builder', 'pro']], 'resync sends the central row as it is')
  })
}

test('[inline] a copy the tenant deleted stays deleted when a delivery reaches it before its delete reached the central database', async (t) => {
  const w = await companyWorld(t, 'inline', 'own pivot')
  const gid = await centralCompany(w.app, { name: 'Acme', plan: 'pro' })
  for (const tenant of [w.a, w.b]) await w.app.tenancy.sync!.attach('companies', gid, tenant)
  await w.settle()
  // The central inbox locked from outside: tenant a's delete is committed there but waits to be forwarded.
  const blocker = new pg.Client({ connectionString: w.central })
  blocker.on('error', () => {})
  await blocker.connect()
  await blocker.query('begin')
  await blocker.query('lock table tenancy.fastify_tenancy_sync_inbox in exclusive mode')
  // Released before the app closes (closing waits for the blocked forward), even when an assertion fails.
  const release = async (): Promise<void> => { await blocker.query('rollback').catch(() => {}); await blocker.end().catch(() => {}) }
  let deleting: Promise<void> = Promise.resolve()
  try {
    deleting = w.app.tenancy.run(w.a, async (scope) => {
      scope.em.remove(await scope.em.findOneOrFail(CompanyEntity, { globalId: gid }))
      await scope.em.flush()
    })
    await until(async () => (await companies(w.db(w.a))).length === 0, { what: 'the tenant deleted its copy' })
    assert.deepEqual((await w.mappingRows()).map((m) => m.tenant), ['a', 'b'], 'its mapping row is still there centrally')
    // A delivery to every mapped tenant (inline: done when resync returns) finds tenant a mapped and without a copy.
    await w.app.tenancy.sync!.resync('companies', gid)
    assert.deepEqual(await companies(w.db(w.a)), [], 'the delivery did not bring the deleted copy back')
  } finally {
    await release()
  }
  await deleting
  await w.settle()
  assert.deepEqual(await companies(w.db(w.a)), [])
  assert.deepEqual((await w.mappingRows()).map((m) => m.tenant), ['b'], 'the delete reached the central database')
  assert.equal((await companies(w.db(w.b)))[0]?.name, 'Acme')
})
