import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'
import { until } from './helpers/poll.js'
import { ProjectEntity } from './helpers/tenant-schema.js'

const STRATEGIES = ['database', 'shared'] as const

for (const strategy of STRATEGIES) {
  test(`[${strategy}] jobs sent from two tenants, worked at the same time, each run in their own tenant context; a central job runs central`, async (t) => {
    const { app } = await buildApp(t, { strategy })
    const a = await app.tenancy.create({ identifier: 'alpha' })
    const b = await app.tenancy.create({ identifier: 'bravo' })
    for (const tenant of [a, b]) {
      await app.tenancy.run(tenant, async (scope) => { scope.em.create(ProjectEntity, { title: `${tenant.identifier} project` }); await scope.em.flush() })
    }
    // The seven jobs are queued before anything works the queue, so one batch (batchSize 10) takes them all.
    await app.tenancy.jobs.define('report', async () => {}, { work: false })
    for (let i = 0; i < 3; i++) {
      await app.tenancy.run(a, async () => { await app.tenancy.jobs.send('report', { n: i }) })
      await app.tenancy.run(b, async () => { await app.tenancy.jobs.send('report', { n: 10 + i }) })
    }
    await app.tenancy.jobs.send('report', { n: 99 })
    // A latch: each job says it started, then waits for the gate. The gate opens only once all seven
    // are inside their handlers at once, so they ran side by side by construction, not by timing.
    const seen: Array<{ n: number, tenant: string | null, rows: string[] }> = []
    const inside: Array<string | null> = []
    let open!: () => void
    const gate = new Promise<void>((resolve) => { open = resolve })
    await app.tenancy.jobs.define<{ n: number }>('report', async (data, { scope }) => {
      inside.push(app.tenancy.current()?.identifier ?? null)
      await gate
      const rows = scope === null ? [] : (await scope.em.find(ProjectEntity, {})).map((p) => p.title)
      seen.push({ n: data.n, tenant: app.tenancy.current()?.identifier ?? null, rows })
    }, { batchSize: 10 })
    try {
      await until(() => inside.length, { is: (n) => n === 7, what: 'all seven jobs inside their handlers at once' })
    } finally {
      open()
    }
    assert.deepEqual([...inside].sort(), ['alpha', 'alpha', 'alpha', 'bravo', 'bravo', 'bravo', null].sort(), 'both tenants\' jobs and the central one ran side by side')
    await until(() => seen.length, { is: (n) => n === 7, what: 'all seven jobs finished' })
    for (const s of seen) {
      if (s.n === 99) assert.deepEqual(s, { n: 99, tenant: null, rows: [] })
      else if (s.n < 10) assert.deepEqual(s, { n: s.n, tenant: 'alpha', rows: ['alpha project'] })
      else assert.deepEqual(s, { n: s.n, tenant: 'bravo', rows: ['bravo project'] })
    }
  })

  test(`[${strategy}] a retried job still runs in its tenant, and a job whose tenant was deleted fails at once with the reason`, async (t) => {
    const { app, central } = await buildApp(t, { strategy })
    const a = await app.tenancy.create({ identifier: 'alpha' })
    const attempts: Array<string | null> = []
    await app.tenancy.jobs.define('flaky', async () => {
      attempts.push(app.tenancy.current()?.identifier ?? null)
      if (attempts.length === 1) throw new Error('first try fails')
    }, { retryLimit: 3, retryDelay: 1, retryBackoff: false })
    await app.tenancy.run(a, async () => { await app.tenancy.jobs.send('flaky', {}) })
    await until(() => attempts.length, { is: (n) => n === 2, what: 'the job is tried twice' })
    assert.deepEqual(attempts, ['alpha', 'alpha'])

    const gone = await app.tenancy.create({ identifier: 'gone' })
    let ran = false
    await app.tenancy.jobs.define('orphan', async () => { ran = true }, { retryLimit: 5, retryDelay: 1, work: false })
    const id = await app.tenancy.run(gone, async () => await app.tenancy.jobs.send('orphan', {}))
    await app.tenancy.delete(gone)
    await app.tenancy.jobs.define('orphan', async () => { ran = true }, { retryLimit: 5, retryDelay: 1 })
    const job = async (): Promise<Record<string, any> | undefined> => (await sql(central.url, 'select state, retry_count, retry_limit, output from fastify_tenancy_queue.job where id = $1', [id]))[0]
    await until(async () => (await job())?.state, { is: (state) => state === 'cancelled', what: 'the orphaned job is cancelled' })
    const ended = await job()
    assert.equal(ran, false)
    assert.equal(ended?.retry_count, 0, 'not retried')
  })
}

test('a job whose handler throws is logged as a warning with its queue, tenant and reason, on each attempt', async (t) => {
  const central = await freshCentral(t)
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, cache: { listen: false }, provisioning: { spares: 0 }
  })
  await app.ready()
  const acme = await app.tenancy.create({ identifier: 'acme' })
  let attempts = 0
  await app.tenancy.jobs.define('boom', async () => { attempts++; throw new Error('handler exploded') }, { retryLimit: 1, retryDelay: 1, retryBackoff: false })
  const id = await app.tenancy.run(acme, async () => await app.tenancy.jobs.send('boom', {}))
  const failed = async (): Promise<string | undefined> => (await sql(central.url, 'select state from fastify_tenancy_queue.job where id = $1', [id]))[0]?.state
  await until(failed, { is: (state) => state === 'failed', what: 'the job fails after its retry', timeoutMs: 30_000 })
  const warnings = lines.filter((l) => l.queue === 'boom')
  assert.equal(warnings.length, attempts)
  assert.equal(attempts, 2)
  for (const w of warnings) {
    assert.equal(w.level, 40)
    assert.equal(w.tenant, acme.key)
    assert.equal(w.job, id)
    assert.match(w.msg, /job .+ of queue boom failed in tenant .+: handler exploded/)
  }
})
