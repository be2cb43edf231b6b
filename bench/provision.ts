import Fastify, { type FastifyInstance } from 'fastify'
import { tenancyPlugin, type TenancyOptions } from '../server/index.js'
import { benchCentral } from './central.js'
import { median, round, type BenchContext, type Figure } from './figures.js'
import { mapLimit } from '../server/support/map-limit.js'
import { tenancyRuntime } from '../server/tenancy.js'
import { TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const SAMPLES = 11

async function appOn (url: string, prefix: string, provisioning: TenancyOptions['provisioning']): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url, prefix }, cache: { listen: false }, provisioning })
  await app.ready()
  return app
}

async function timeCreates (app: FastifyInstance, label: string, waitForSpares: boolean): Promise<number[]> {
  const times: number[] = []
  // One first tenant builds the template (not measured).
  await app.tenancy.create({ identifier: `${label}-warm` })
  for (let i = 0; i < SAMPLES; i++) {
    if (waitForSpares) await tenancyRuntime(app.tenancy).idle()
    const started = performance.now()
    await app.tenancy.create({ identifier: `${label}-${i}` })
    times.push(performance.now() - started)
  }
  return times
}

/** Provisioning one tenant through the template (a spare database renamed), a direct clone, and the migrations. */
export async function provision (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const apps: FastifyInstance[] = []
  try {
    const template = await appOn(central.url, central.prefix, { template: true, spares: 2 })
    apps.push(template)
    const viaTemplate = await timeCreates(template, 'tpl', true)
    const clone = await appOn(central.url, central.prefix, { template: true, spares: 0 })
    apps.push(clone)
    const viaClone = await timeCreates(clone, 'cln', false)
    const migrate = await appOn(central.url, central.prefix, { template: false })
    apps.push(migrate)
    const viaMigrations = await timeCreates(migrate, 'mig', false)
    const t = median(viaTemplate)
    const m = median(viaMigrations)
    ctx.log(`provision: template ${round(t, 1)} ms, clone ${round(median(viaClone), 1)} ms, migrations ${round(m, 1)} ms`)
    return [
      { name: 'provision.template.ms', value: round(t, 1), unit: 'ms', note: `median of ${SAMPLES}; a spare cloned from the template is renamed` },
      { name: 'provision.clone.ms', value: round(median(viaClone), 1), unit: 'ms', note: 'CREATE DATABASE … TEMPLATE with no spare ready' },
      { name: 'provision.migrate.ms', value: round(m, 1), unit: 'ms', note: 'CREATE DATABASE, then every tenant migration' },
      { name: 'provision.speedup', value: round(m / t, 2), unit: 'ratio', note: 'migrations ÷ template; target ≥ 3' }
    ]
  } finally {
    for (const app of apps) await app.close()
    await central.drop()
  }
}

/** Migrating 200 tenant databases (after a rollback of the newest migration), one at a time and eight at a time. */
export async function migrate200 (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const app = await appOn(central.url, central.prefix, { template: true, spares: 0 })
  try {
    const started = performance.now()
    await mapLimit(Array.from({ length: 200 }, (_, i) => i), 4, async (i) => { await app.tenancy.create({ identifier: `m${i}` }) })
    ctx.log(`migrate200: made 200 tenant databases in ${round((performance.now() - started) / 1000, 1)} s`)
    const figures: Figure[] = []
    for (const concurrency of [1, 8]) {
      const back = await app.tenancy.rollback({ concurrency: 8 })
      if (back.some((r) => !r.ok)) throw new Error('rollback failed for some tenants')
      const t0 = performance.now()
      const results = await app.tenancy.migrate({ concurrency })
      const seconds = (performance.now() - t0) / 1000
      if (results.length !== 200 || results.some((r) => !r.ok || r.migrations.length !== 1)) throw new Error('migrate did not run the migration on every tenant')
      ctx.log(`migrate200: concurrency ${concurrency}: ${round(seconds, 2)} s`)
      figures.push({ name: `migrate200.c${concurrency}.s`, value: round(seconds, 2), unit: 's', note: `200 tenant databases, concurrency ${concurrency}` })
    }
    return figures
  } finally {
    await app.close()
    await central.drop()
  }
}
