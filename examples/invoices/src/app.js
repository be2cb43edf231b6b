import Fastify from 'fastify'
import { tenancyPlugin } from 'fastify-tenancy'
import { adminPlugin } from 'fastify-tenancy/admin'
import { Invoice } from './invoice.js'
import { tenancyOptions } from './options.js'

const INVOICE_BODY = {
  type: 'object',
  required: ['number', 'customer', 'totalCents'],
  additionalProperties: false,
  properties: {
    number: { type: 'string', minLength: 1, maxLength: 255 },
    customer: { type: 'string', minLength: 1, maxLength: 255 },
    totalCents: { type: 'integer', minimum: 0 }
  }
}
const ID = { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] }

/**
 * The invoicing app. `leaky: true` adds a route that forgets the tenant (a
 * response cache keyed by path only), for the test that proves the isolation
 * check catches it.
 */
export async function buildApp ({ env = process.env, leaky = false, logger = false } = {}) {
  const app = Fastify({ logger })
  await app.register(tenancyPlugin, tenancyOptions(env))
  await app.register(adminPlugin, { cookieSecret: env.COOKIE_SECRET ?? 'change-me-to-32-characters-or-more!!' })

  // A job: runs in the tenant's context it was sent from.
  await app.tenancy.jobs.define('invoices.remind', async ({ id }, { scope }) => {
    const invoice = await scope.em.findOneOrFail(Invoice, { id })
    invoice.remindedAt = new Date()
    await scope.em.flush()
  })

  app.get('/invoices', async (request) => {
    return await request.tenantEm.find(Invoice, {}, { orderBy: { id: 'asc' } })
  })
  app.post('/invoices', { schema: { body: INVOICE_BODY } }, async (request, reply) => {
    const invoice = request.tenantEm.create(Invoice, { ...request.body, remindedAt: null })
    await request.tenantEm.flush()
    return await reply.code(201).send(invoice)
  })
  app.get('/invoices/:id', { schema: { params: ID } }, async (request, reply) => {
    const invoice = await request.tenantEm.findOne(Invoice, { id: request.params.id })
    return invoice ?? await reply.code(404).send({ message: 'No such invoice.' })
  })
  app.patch('/invoices/:id', { schema: { params: ID, body: { ...INVOICE_BODY, required: [] } } }, async (request, reply) => {
    const invoice = await request.tenantEm.findOne(Invoice, { id: request.params.id })
    if (invoice === null) return await reply.code(404).send({ message: 'No such invoice.' })
    request.tenantEm.assign(invoice, request.body)
    await request.tenantEm.flush()
    return invoice
  })
  app.delete('/invoices/:id', { schema: { params: ID } }, async (request, reply) => {
    const deleted = await request.tenantEm.nativeDelete(Invoice, { id: request.params.id })
    return await reply.code(deleted === 0 ? 404 : 204).send()
  })
  app.post('/invoices/:id/remind', { schema: { params: ID } }, async (request, reply) => {
    const invoice = await request.tenantEm.findOne(Invoice, { id: request.params.id })
    if (invoice === null) return await reply.code(404).send({ message: 'No such invoice.' })
    // Sent inside the request, so the job knows its tenant.
    const job = await app.tenancy.jobs.send('invoices.remind', { id: invoice.id })
    return await reply.code(202).send({ job })
  })

  if (leaky) {
    // The bug the isolation check is for: a cache that forgets whose answer it holds.
    let cached = null
    app.get('/recent', async (request) => {
      cached ??= await request.tenantEm.find(Invoice, {}, { orderBy: { id: 'desc' }, limit: 5 })
      return cached
    })
  }
  return app
}
