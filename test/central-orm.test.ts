import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { MikroORM } from '@mikro-orm/postgresql'
import { defineEntity, p } from '@mikro-orm/core'
import { tenancyPlugin, centralEntities, TenantEntity } from '../server/index.js'
import { freshCentral, sql } from './helpers/database.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

/** An entity of the app's own, next to ours in its central database. */
const InvoiceEntity = defineEntity({
  name: 'Invoice',
  tableName: 'app_invoices',
  properties: { id: p.integer().primary().autoincrement(), total: p.integer() }
})

test('an app passes its own central MikroORM as `orm`: the plugin uses it, migrates with its own, and never closes it', async (t) => {
  const central = await freshCentral(t)
  await sql(central.url, 'create table app_invoices (id serial primary key, total int not null)')
  const orm = await MikroORM.init({ clientUrl: central.url, entities: [...centralEntities, InvoiceEntity], contextName: 'app-central', allowGlobalContext: false })
  t.after(async () => { await orm.close(true) })

  const app = Fastify()
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    orm,
    database: { url: central.url, prefix: central.prefix },
    migrateCentral: true,
    provisioning: { spares: 0 }
  })
  app.get('/whoami', async (request) => ({ tenant: request.tenant?.identifier }))
  await app.ready()
  assert.equal(app.tenancy.orm, orm, 'app.tenancy.orm is the app\'s own instance')

  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  // The app's instance sees the tenant the plugin made, and its own entities still work.
  const em = orm.em.fork()
  assert.equal((await em.findOneOrFail(TenantEntity, { key: acme.key })).identifier, 'acme')
  em.create(InvoiceEntity, { total: 42 })
  await em.flush()
  const res = await app.inject({ url: '/whoami', headers: { host: 'acme.localhost' } })
  assert.deepEqual(res.json(), { tenant: 'acme' })

  await app.close()
  // Still open after the plugin closed: it belongs to the app.
  assert.equal((await orm.em.fork().count(InvoiceEntity, {})), 1)
})

test('an `orm` without the central entities is refused at register with FST_TENANCY_INVALID_OPTION naming orm', async (t) => {
  const central = await freshCentral(t)
  const orm = await MikroORM.init({ clientUrl: central.url, entities: [InvoiceEntity], contextName: 'app-central-bare', allowGlobalContext: false })
  t.after(async () => { await orm.close(true) })
  const app = Fastify()
  app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, orm, database: { url: central.url, prefix: central.prefix } })
  await assert.rejects(async () => { await app.ready() }, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_INVALID_OPTION')
    assert.match(error.message, /"orm"/)
    assert.match(error.message, /centralEntities/)
    return true
  })
  await app.close()
})
