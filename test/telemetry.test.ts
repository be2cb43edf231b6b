import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { tenancyPlugin, tenantSpanProcessor } from '../server/index.js'
import { ProjectEntity, TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'
import { buildApp } from './helpers/app.js'
import { freshCentral } from './helpers/database.js'

test('with OpenTelemetry, every span of a tenant request carries tenant.id, and spans of central requests carry none', async (t) => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [tenantSpanProcessor(new SimpleSpanProcessor(exporter))] })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  trace.setGlobalTracerProvider(provider)
  t.after(async () => { await provider.shutdown(); context.disable(); trace.disable() })
  const instrumentation = new FastifyOtelInstrumentation({ registerOnInitialization: false })
  instrumentation.setTracerProvider(provider)

  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(instrumentation.plugin())
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['subdomain'], centralDomains: ['example.com'] })
  app.addHook('preHandler', async () => {})
  const tracer = trace.getTracer('test')
  app.get('/projects', async (request) => {
    // Spans the app makes itself, inside the handler and in a nested call.
    return await tracer.startActiveSpan('load projects', async (span) => {
      const rows = await request.tenantEm.find(ProjectEntity, {})
      tracer.startSpan('format').end()
      span.end()
      return { tenant: request.tenant?.identifier, count: rows.length }
    })
  })
  app.get('/health', { config: { tenancy: 'central' } }, async () => ({ ok: true }))
  await app.ready()
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const bob = await app.tenancy.create({ identifier: 'bob' })

  exporter.reset()
  const responses = await Promise.all([
    app.inject({ url: '/projects', headers: { host: 'acme.example.com' } }),
    app.inject({ url: '/projects', headers: { host: 'bob.example.com' } }),
    app.inject({ url: '/health', headers: { host: 'example.com' } })
  ])
  assert.deepEqual(responses.map((r) => r.statusCode), [200, 200, 200])
  await provider.forceFlush()
  const spans = exporter.getFinishedSpans()
  const byTrace = new Map<string, typeof spans>()
  for (const span of spans) byTrace.set(span.spanContext().traceId, [...(byTrace.get(span.spanContext().traceId) ?? []), span])
  assert.equal(byTrace.size, 3, 'one trace per request')
  const seen = new Map<string, number>()
  for (const traceSpans of byTrace.values()) {
    const root = traceSpans.find((s) => s.name === 'request')
    const path = String(root?.attributes['url.path'])
    if (path === '/health') {
      assert.ok(traceSpans.every((s) => s.attributes['tenant.id'] === undefined), 'a central request names no tenant')
      continue
    }
    const ids = new Set(traceSpans.map((s) => s.attributes['tenant.id']))
    assert.equal(ids.size, 1, `every span of one request names one tenant: ${traceSpans.map((s) => `${s.name}=${String(s.attributes['tenant.id'])}`).join(', ')}`)
    const id = [...ids][0] as string
    assert.ok(id === acme.key || id === bob.key)
    assert.ok(traceSpans.some((s) => s.name === 'load projects') && traceSpans.some((s) => s.name === 'format'))
    assert.ok(traceSpans.length >= 5, `request, hooks, handler and the app's spans (${traceSpans.map((s) => s.name).join(', ')})`)
    seen.set(id, traceSpans.length)
  }
  assert.deepEqual([...seen.keys()].sort(), [acme.key, bob.key].sort())
})

test('app.tenancy.stats() counts each tenant\'s requests, 5xx answers and latency', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'] }, (app) => {
    app.get('/ok', async () => ({ ok: true }))
    app.get('/boom', async () => { throw new Error('boom') })
  })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  const bob = await app.tenancy.create({ identifier: 'bob' })
  for (let i = 0; i < 7; i++) await app.inject({ url: '/ok', headers: { host: 'acme.example.com' } })
  await app.inject({ url: '/boom', headers: { host: 'acme.example.com' } })
  for (let i = 0; i < 3; i++) await app.inject({ url: '/ok', headers: { host: 'bob.example.com' } })
  await app.inject({ url: '/ok', headers: { host: 'nobody.example.com' } })
  const { tenants } = app.tenancy.stats()
  assert.deepEqual(Object.keys(tenants).sort(), [acme.key, bob.key].sort(), 'unknown tenants are not counted')
  assert.equal(tenants[acme.key]?.identifier, 'acme')
  assert.equal(tenants[acme.key]?.requests, 8)
  assert.equal(tenants[acme.key]?.errors, 1)
  assert.equal(tenants[bob.key]?.requests, 3)
  assert.equal(tenants[bob.key]?.errors, 0)
  const latency = tenants[acme.key]?.latency
  assert.ok(latency !== undefined && latency.meanMs > 0 && latency.maxMs >= latency.meanMs && latency.p50Ms <= latency.p95Ms && latency.p95Ms <= latency.p99Ms && latency.p99Ms <= latency.maxMs, JSON.stringify(latency))
})

test('recipe: @fastify/rate-limit keyed by tenant limits a noisy tenant and leaves the others alone', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'] }, async (app) => {
    // As in the README: after identification (preHandler), keyed by the tenant's key.
    await app.register(rateLimit, {
      hook: 'preHandler',
      max: 3,
      timeWindow: 60_000,
      keyGenerator: (request) => request.tenant?.key ?? request.ip
    })
    app.get('/ok', async (request) => ({ tenant: request.tenant?.identifier }))
  })
  await app.tenancy.create({ identifier: 'noisy' })
  await app.tenancy.create({ identifier: 'quiet' })
  const hit = async (host: string, remoteAddress: string): Promise<number> => (await app.inject({ url: '/ok', remoteAddress, headers: { host } })).statusCode
  // From several addresses: the limit follows the tenant, not the client.
  const noisy = []
  for (let i = 0; i < 5; i++) noisy.push(await hit('noisy.example.com', `10.0.0.${i + 1}`))
  assert.deepEqual(noisy, [200, 200, 200, 429, 429])
  const limited = await app.inject({ url: '/ok', headers: { host: 'noisy.example.com' } })
  assert.equal(limited.headers['x-ratelimit-limit'], '3')
  assert.deepEqual([await hit('quiet.example.com', '10.0.0.1'), await hit('quiet.example.com', '10.0.0.1'), await hit('quiet.example.com', '10.0.0.1')], [200, 200, 200])
})
