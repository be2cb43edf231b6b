import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { context, trace, TraceFlags } from '@opentelemetry/api'
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

test('requests of tenants ta and tb and a central route sharing one trace id: every span carries its own request\'s tenant, or none on the central one', async (t) => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [tenantSpanProcessor(new SimpleSpanProcessor(exporter))] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(provider)
  t.after(async () => { await provider.shutdown(); context.disable(); trace.disable() })
  const instrumentation = new FastifyOtelInstrumentation({ registerOnInitialization: false })
  instrumentation.setTracerProvider(provider)

  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(instrumentation.plugin())
  // A hook that runs, and ends its span, before the tenant is identified.
  app.addHook('onRequest', async function earlyHook () {})
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['subdomain'], centralDomains: ['example.com'], provisioning: { spares: 0 } })
  const tracer = trace.getTracer('test')
  app.get('/work', async (request) => {
    // The app's own spans, one of them after a pause so the requests interleave.
    return await tracer.startActiveSpan('app work', async (span) => {
      await new Promise((resolve) => setImmediate(resolve))
      if (request.tenant !== null) await request.tenantEm.find(ProjectEntity, {})
      tracer.startSpan('app detail').end()
      span.end()
      return { tenant: request.tenant?.identifier ?? null }
    })
  })
  app.get('/central/work', { config: { tenancy: 'central' } }, async () => {
    tracer.startSpan('central detail').end()
    return { tenant: null }
  })
  await app.ready()
  const ta = await app.tenancy.create({ identifier: 'ta' })
  const tb = await app.tenancy.create({ identifier: 'tb' })
  const expected: Record<string, string | undefined> = { ta: ta.key, tb: tb.key, central: undefined }

  type Finished = ReturnType<InMemorySpanExporter['getFinishedSpans']>[number]
  /** The request (by its `for` query value) each span belongs to, found through its parents in this process. */
  const requestOf = (spans: Finished[], span: Finished): string | null => {
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
    for (let s: Finished | undefined = span; s !== undefined; s = byId.get(s.parentSpanContext?.spanId ?? '')) {
      if (s.name === 'request') return new URLSearchParams(String(s.attributes['url.path']).split('?')[1]).get('for')
    }
    return null
  }
  const check = (label: string, spans: Finished[]): void => {
    const wrong: string[] = []
    const counted: Record<string, number> = {}
    for (const span of spans) {
      const owner = requestOf(spans, span)
      if (owner === null) {
        if (span.attributes['tenant.id'] !== undefined) wrong.push(`${span.name} (outside any request) = ${String(span.attributes['tenant.id'])}`)
        continue
      }
      counted[owner] = (counted[owner] ?? 0) + 1
      if (span.attributes['tenant.id'] !== expected[owner]) wrong.push(`${owner}: ${span.name} = ${String(span.attributes['tenant.id'])}`)
    }
    assert.deepEqual(wrong, [], `${label}: spans with another request's tenant or none`)
    for (const owner of ['ta', 'tb', 'central']) assert.ok((counted[owner] ?? 0) >= 4, `${label}: ${owner} has its request, hooks and handler spans (${JSON.stringify(counted)})`)
  }
  const send = async (): Promise<void> => {
    const headers = (host: string): Record<string, string> => ({ host })
    const responses = await Promise.all([
      app.inject({ url: '/work?for=ta', headers: headers('ta.example.com') }),
      app.inject({ url: '/work?for=tb', headers: headers('tb.example.com') }),
      app.inject({ url: '/central/work?for=central', headers: headers('example.com') }),
      app.inject({ url: '/work?for=ta', headers: headers('ta.example.com') }),
      app.inject({ url: '/work?for=tb', headers: headers('tb.example.com') })
    ])
    assert.deepEqual(responses.map((r) => r.json().tenant), ['ta', 'tb', null, 'ta', 'tb'])
  }

  // A gateway elsewhere: the requests continue one remote trace (as from a traceparent header).
  exporter.reset()
  const remoteParent = trace.setSpanContext(context.active(), { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true })
  await context.with(remoteParent, send)
  await provider.forceFlush()
  const remote = exporter.getFinishedSpans()
  assert.equal(new Set(remote.map((s) => s.spanContext().traceId)).size, 1, 'one trace')
  check('remote gateway', remote)

  // A gateway in this process: the requests are made inside its span.
  exporter.reset()
  await tracer.startActiveSpan('gateway', async (gateway) => {
    await send()
    gateway.end()
  })
  await provider.forceFlush()
  const local = exporter.getFinishedSpans()
  assert.equal(new Set(local.map((s) => s.spanContext().traceId)).size, 1, 'one trace')
  assert.equal(local.find((s) => s.name === 'gateway')?.attributes['tenant.id'], undefined, 'the gateway span names no tenant')
  check('in-process gateway', local)
})

test('log lines of a tenant request carry the tenant from identification on: Fastify\'s "incoming request" line comes before it, unless the app logs that line itself after identification', async (t) => {
  const central = await freshCentral(t)
  /** An app whose log lines are kept as parsed JSON. */
  const logged = async (recipe: boolean): Promise<Array<Record<string, any>>> => {
    const lines: Array<Record<string, any>> = []
    const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
    const app = Fastify({ logger: { level: 'info', stream }, disableRequestLogging: recipe })
    t.after(async () => { await app.close() })
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['subdomain'], centralDomains: ['example.com'], provisioning: { spares: 0 } })
    if (recipe) {
      // As docs/operations.md shows: Fastify's request lines, written once the tenant is known.
      app.addHook('preParsing', async (request) => { request.log.info({ req: request }, 'incoming request') })
      app.addHook('onResponse', async (request, reply) => { reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed') })
    }
    app.get('/hello', async (request) => { request.log.info('handler says hello'); return { tenant: request.tenant?.identifier } })
    await app.ready()
    if (await app.tenancy.tenants.find('acme') === null) await app.tenancy.create({ identifier: 'acme' })
    lines.length = 0
    assert.equal((await app.inject({ url: '/hello', headers: { host: 'acme.example.com' } })).statusCode, 200)
    return lines.filter((l) => l.reqId !== undefined)
  }
  const plain = await logged(false)
  assert.deepEqual(plain.map((l) => [l.msg, l.tenant?.identifier ?? null]), [['incoming request', null], ['handler says hello', 'acme'], ['request completed', 'acme']])
  const recipe = await logged(true)
  assert.deepEqual(recipe.map((l) => [l.msg, l.tenant?.identifier ?? null]), [['incoming request', 'acme'], ['handler says hello', 'acme'], ['request completed', 'acme']])
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
  // Answered before the tenant's scope opens (maintenance's 503): counted too.
  await app.tenancy.maintenance(bob, {})
  assert.equal((await app.inject({ url: '/ok', headers: { host: 'bob.example.com' } })).statusCode, 503)
  const { tenants } = app.tenancy.stats()
  assert.deepEqual(Object.keys(tenants).sort(), [acme.key, bob.key].sort(), 'unknown tenants are not counted')
  assert.equal(tenants[acme.key]?.identifier, 'acme')
  assert.equal(tenants[acme.key]?.requests, 8)
  assert.equal(tenants[acme.key]?.errors, 1)
  assert.equal(tenants[bob.key]?.requests, 4)
  assert.equal(tenants[bob.key]?.errors, 1)
  const latency = tenants[acme.key]?.latency
  assert.ok(latency !== undefined && latency.meanMs > 0 && latency.maxMs >= latency.meanMs &&
    latency.p50Ms <= latency.p95Ms && latency.p95Ms <= latency.p99Ms && latency.p99Ms <= latency.maxMs, JSON.stringify(latency))
})

test('recipe: @fastify/rate-limit keyed by tenant limits a noisy tenant and leaves the others alone', async (t) => {
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'] }, async (app) => {
    // As in docs/operations.md: after identification (preHandler), keyed by the tenant's key.
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
