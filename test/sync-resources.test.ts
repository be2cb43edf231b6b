import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sql } from './helpers/database.js'
import { TenantResourceEntity } from '../server/index.js'
import { CentralCompanyEntity, CompanyEntity, TenantCompanyEntity } from '../server/demo/companies.js'
import { MAPPINGS, MODES, centralCompany, changeCentral, companies, companyWorld, type MappingName } from './helpers/companies.js'

const sorted = (list: string[]): string[] => [...list].sort()

const STRATEGIES = ['database', 'shared'] as const

for (const strategy of STRATEGIES) {
  for (const mode of MODES) {
    for (const mapping of Object.keys(MAPPINGS) as MappingName[]) {
      const tag = strategy === 'database' ? `[${mode}, ${mapping}]` : `[${strategy}, ${mode}, ${mapping}]`

      test(`${tag} companies sync next to users: attach copies the row, changes go both ways, one event per touched database and none for the origin`, async (t) => {
        const w = await companyWorld(t, mode, mapping, { options: { strategy } })
        const gid = await centralCompany(w.app, { name: 'Acme', plan: 'pro' })
        await w.settle()
        assert.deepEqual(w.events, [], 'creating centrally touches no other database')
        await w.app.tenancy.sync!.attach('companies', gid, w.a)
        await w.app.tenancy.sync!.attach('companies', gid, w.b)
        await w.settle()
        for (const tenant of [w.a, w.b]) {
          assert.deepEqual(await companies(w.db(tenant)), [{ global_id: gid, name: 'Acme', plan: 'pro', notes: 'synced from the central database', deleted: false }])
        }
        assert.deepEqual(await companies(w.db(w.c)), [])
        assert.deepEqual(await w.mappingRows(), sorted(['a', 'b']).map((tenant) => ({ tenant, global_id: gid })))
        assert.deepEqual(sorted(w.events), ['sync.attached a', 'sync.attached b'])

        w.events.length = 0
        await changeCentral(w.app, gid, { name: 'Acme Ltd' })
        await w.settle()
        for (const tenant of [w.a, w.b]) assert.equal((await companies(w.db(tenant)))[0]?.name, 'Acme Ltd')
        assert.deepEqual(sorted(w.events), ['sync.saved a', 'sync.saved b'])

        w.events.length = 0
        await w.app.tenancy.run(w.a, async (scope) => {
          const copy = await scope.em.findOneOrFail(CompanyEntity, { globalId: gid })
          copy.name = 'Acme From A'
          copy.notes = 'only in a'
          await scope.em.flush()
        })
        await w.settle()
        assert.deepEqual(await sql(w.central, 'select name, plan from companies'), [{ name: 'Acme From A', plan: 'pro' }])
        assert.deepEqual((await companies(w.db(w.b)))[0], { global_id: gid, name: 'Acme From A', plan: 'pro', notes: 'synced from the central database', deleted: false })
        assert.equal((await companies(w.db(w.a)))[0]?.notes, 'only in a')
        assert.deepEqual(sorted(w.events), ['sync.saved b', 'sync.saved central'], 'never the origin (a)')
        assert.deepEqual(await companies(w.db(w.c)), [])
        assert.deepEqual(await sql(w.db(w.c), 'select * from fastify_tenancy_sync_state'), [], 'the tenant without the company is untouched')

        // A company made in a tenant with a new global id: the central row and the mapping follow.
        w.events.length = 0
        let fresh = ''
        await w.app.tenancy.run(w.b, async (scope) => {
          const made = scope.em.create(CompanyEntity, { name: 'Made in B', plan: 'free' } as never)
          await scope.em.flush()
          fresh = String(made.globalId)
        })
        await w.settle()
        assert.deepEqual(await sql(w.central, 'select name, plan from companies where global_id = $1', [fresh]), [{ name: 'Made in B', plan: 'free' }])
        assert.ok((await w.mappingRows()).some((r) => r.tenant === 'b' && r.global_id === fresh))
        assert.deepEqual(w.events, ['sync.saved central'])
      })

      test(`${tag} soft delete and restore reach the copies, a soft delete in a tenant stays there; detach, central delete and tenant deletion clean up`, async (t) => {
        const w = await companyWorld(t, mode, mapping, { options: { strategy } })
        const gid = await centralCompany(w.app, { name: 'Soft', plan: 'pro' })
        for (const tenant of [w.a, w.b]) await w.app.tenancy.sync!.attach('companies', gid, tenant)
        await w.settle()
        w.events.length = 0

        await changeCentral(w.app, gid, { deletedAt: new Date() })
        await w.settle()
        for (const tenant of [w.a, w.b]) assert.equal((await companies(w.db(tenant)))[0]?.deleted, true)
        assert.deepEqual(sorted(w.events), ['sync.deleted a', 'sync.deleted b'])
        w.events.length = 0
        await changeCentral(w.app, gid, { deletedAt: null })
        await w.settle()
        for (const tenant of [w.a, w.b]) assert.equal((await companies(w.db(tenant)))[0]?.deleted, false)
        assert.deepEqual(sorted(w.events), ['sync.restored a', 'sync.restored b'])

        w.events.length = 0
        await w.app.tenancy.run(w.a, async (scope) => {
          const copy = await scope.em.findOneOrFail(CompanyEntity, { globalId: gid })
          copy.deletedAt = new Date()
          await scope.em.flush()
        })
        await changeCentral(w.app, gid, { name: 'Soft Renamed' })
        await w.settle()
        assert.deepEqual(await sql(w.central, 'select deleted_at from companies'), [{ deleted_at: null }])
        assert.deepEqual((await companies(w.db(w.a)))[0], { global_id: gid, name: 'Soft Renamed', plan: 'pro', notes: 'synced from the central database', deleted: true }, 'the local soft delete stays, the rename arrives')
        assert.equal((await companies(w.db(w.b)))[0]?.deleted, false)
        assert.deepEqual(sorted(w.events), ['sync.saved a', 'sync.saved b'])

        w.events.length = 0
        await w.app.tenancy.sync!.detach('companies', gid, w.b)
        await w.settle()
        assert.deepEqual(await companies(w.db(w.b)), [])
        assert.deepEqual(w.events, ['sync.detached b'])

        // A central delete removes every copy and the mapping.
        w.events.length = 0
        await w.app.tenancy.sync!.attach('companies', gid, w.b)
        await w.settle()
        const em = w.app.tenancy.orm.em.fork()
        em.remove(await em.findOneOrFail(CentralCompanyEntity, { globalId: gid }))
        await em.flush()
        await w.settle()
        for (const tenant of [w.a, w.b]) assert.deepEqual(await companies(w.db(tenant)), [])
        assert.deepEqual(await w.mappingRows(), [])
        assert.deepEqual(sorted(w.events), ['sync.attached b', 'sync.deleted a', 'sync.deleted b'])

        // Deleting a tenant removes its rows from the mapping (the own pivot has no foreign key to tenants).
        const other = await centralCompany(w.app, { name: 'Other' })
        await w.app.tenancy.sync!.attach('companies', other, w.a)
        await w.app.tenancy.sync!.attach('companies', other, w.b)
        await w.settle()
        await w.app.tenancy.delete(w.a)
        assert.deepEqual(await w.mappingRows(), [{ tenant: 'b', global_id: other }])
      })

      test(`${tag} shouldSync false writes nothing elsewhere; attaching an unknown global id is refused with a code and leaves no row`, async (t) => {
        const w = await companyWorld(t, mode, mapping, { options: { strategy } })
        const hidden = await centralCompany(w.app, { name: 'Hidden', plan: 'private' })
        await w.app.tenancy.sync!.attach('companies', hidden, w.a)
        await changeCentral(w.app, hidden, { name: 'Hidden 2' })
        await w.app.tenancy.run(w.b, async (scope) => {
          scope.em.create(CompanyEntity, { name: 'Private in B', plan: 'private' } as never)
          await scope.em.flush()
        })
        await w.settle()
        assert.deepEqual(await companies(w.db(w.a)), [], 'attached, but not synced: no copy')
        assert.deepEqual(await sql(w.central, 'select name from companies order by name'), [{ name: 'Hidden 2' }], 'the private company made in b stays in b')
        assert.deepEqual(w.events, [])

        // A synced company that turns private: its later changes and its detach stay where they are made.
        const shown = await centralCompany(w.app, { name: 'Shown', plan: 'pro' })
        await w.app.tenancy.sync!.attach('companies', shown, w.a)
        await w.settle()
        w.events.length = 0
        await changeCentral(w.app, shown, { plan: 'private', name: 'Shown, now private' })
        await w.app.tenancy.sync!.detach('companies', shown, w.a)
        await w.settle()
        assert.deepEqual((await companies(w.db(w.a))).map((r) => [r.name, r.plan]), [['Shown', 'pro']])
        assert.deepEqual(w.events, [])

        const before = await w.mappingRows()
        await assert.rejects(w.app.tenancy.sync!.attach('companies', 'no-such-company', w.a), (e: any) => e.code === 'FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID')
        const em = w.app.tenancy.orm.em.fork()
        if (mapping === 'own pivot') em.create(TenantCompanyEntity, { tenantKey: w.a.key, globalCompanyId: 'no-such-company' } as never)
        else em.create(TenantResourceEntity, { tenantKey: w.a.key, resourceType: 'companies', globalId: 'no-such-company' } as never)
        await assert.rejects(em.flush(), (e: any) => e.code === 'FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID')
        await assert.rejects(w.app.tenancy.sync!.attach('products', hidden, w.a), (e: any) => e.code === 'FST_TENANCY_SYNC_UNKNOWN_RESOURCE')
        await w.settle()
        assert.deepEqual(await w.mappingRows(), before)
        assert.deepEqual((await companies(w.db(w.a))).map((r) => r.global_id), [shown])
      })
    }
  }
}
