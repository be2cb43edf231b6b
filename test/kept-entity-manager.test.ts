import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { EntityManager } from '@mikro-orm/postgresql'
import { buildApp } from './helpers/app.js'
import { type Tenant } from '../server/index.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

const STRATEGIES = ['database', 'schema', 'shared'] as const

for (const strategy of STRATEGIES) {
  test(`[${strategy}] an EntityManager kept from tenant a's request refuses to serve tenant b's request, and shows none of a's rows`, async (t) => {
    // What an app does by mistake: keep the first request's EntityManager in a module variable.
    let kept: EntityManager | null = null
    let keptId = 0
    const { app } = await buildApp(t, { identification: ['header'], strategy, cache: { listen: false } }, (a) => {
      a.get('/keep', async (request) => {
        kept = request.tenantEm
        const project = await kept.findOneOrFail(ProjectEntity, { title: { $like: '%' } })
        keptId = project.id
        return { id: project.id, title: project.title }
      })
      a.get('/find', async () => { const p = await (kept as EntityManager).findOne(ProjectEntity, keptId); return p === null ? null : { title: p.title } })
      a.get('/raw', async () => await (kept as EntityManager).getConnection().execute('select title from projects order by title'))
      a.get('/knex', async () => (await (kept as EntityManager).getKnex().raw('select title from projects order by title')).rows)
      a.get('/create', async () => { (kept as EntityManager).create(ProjectEntity, { title: 'written-by-b' }); await (kept as EntityManager).flush(); return { ok: true } })
    })
    const seed = async (tenant: Tenant, title: string): Promise<void> => {
      await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title }); await scope.em.flush() })
    }
    const a = await app.tenancy.create({ identifier: 'a' })
    const b = await app.tenancy.create({ identifier: 'b' })
    await seed(a, 'a-secret')
    await seed(b, 'b-own')
    assert.deepEqual((await app.inject({ url: '/keep', headers: { 'x-tenant': 'a' } })).json().title, 'a-secret')
    // The identity map holds a's entity: a find by id in b's request must not return it.
    const found = await app.inject({ url: '/find', headers: { 'x-tenant': 'b' } })
    assert.equal(found.statusCode, 500)
    assert.equal(found.json().code, 'FST_TENANCY_WRONG_TENANT')
    assert.doesNotMatch(found.body, /a-secret/)
    const created = await app.inject({ url: '/create', headers: { 'x-tenant': 'b' } })
    assert.equal(created.json().code, 'FST_TENANCY_WRONG_TENANT')
    // Raw SQL through its connection: refused (a's own database), or run as b, the running tenant (a pool tenants share).
    for (const url of ['/raw', '/knex']) {
      const raw = await app.inject({ url, headers: { 'x-tenant': 'b' } })
      assert.doesNotMatch(raw.body, /a-secret/, url)
      if (strategy === 'database') assert.equal(raw.json().code, 'FST_TENANCY_WRONG_TENANT', url)
      else assert.deepEqual(raw.json(), [{ title: 'b-own' }], url)
    }
    // Nothing was written anywhere meanwhile, and in a's own request the kept EntityManager still works.
    const rows = await app.tenancy.run(a, async (scope) => (await scope.em.find(ProjectEntity, {})).map((p) => p.title))
    assert.deepEqual(rows, ['a-secret'])
    assert.deepEqual((await app.inject({ url: '/find', headers: { 'x-tenant': 'a' } })).json(), { title: 'a-secret' })
  })
}
