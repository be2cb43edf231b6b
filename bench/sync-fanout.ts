import Fastify, { type FastifyInstance } from 'fastify'
import { CentralUserEntity, tenancyPlugin, type Tenant } from '../server/index.js'
import { TenantUserCopyEntity, TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'
import { mapLimit } from '../server/support/map-limit.js'
import { benchCentral } from './central.js'
import { median, round, type BenchContext, type Figure } from './figures.js'

const TENANTS = 100
const SAMPLES = 7
const USERS = { name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }

export const SYNC_FIGURES = ['sync.fanout100.inline.ms', 'sync.fanout100.queued.ms', 'sync.fanout100.default.ms'] as const

type Setup = 'inline' | 'queued' | 'default'

async function appOn (url: string, prefix: string, setup: Setup): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  // inline, queued: room for every tenant's pool (and a budget of connections to match, so the fan-out
  // may use 16), so the figure is the syncer's and not pools being opened and closed. default: the
  // options as they come (queued; 100 tenants are more than poolCap, so pools open and close).
  const database = setup === 'default' ? { url, prefix } : { url, prefix, poolCap: TENANTS + 10, poolSize: 1, maxConnections: 2 * (TENANTS + 10) }
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database, cache: { listen: false }, sync: { ...(setup === 'default' ? {} : { mode: setup }), resources: [USERS] } })
  await app.ready()
  return app
}

/** One central change until every attached tenant copy holds it: each copy's commit fires `sync.saved`, counted here. */
async function fanOut (app: FastifyInstance, globalId: string, name: string): Promise<number> {
  let saved = 0
  let resolveAll: () => void = () => {}
  const all = new Promise<void>((resolve) => { resolveAll = resolve })
  const off = app.tenancy.events.on('sync.saved', (e) => { if (e.globalId === globalId && ++saved === TENANTS) resolveAll() })
  try {
    const started = performance.now()
    const em = app.tenancy.orm.em.fork()
    const user = await em.findOneOrFail(CentralUserEntity, { globalId })
    user.name = name
    await em.flush()
    await all
    return performance.now() - started
  } finally {
    off()
  }
}

/** `sync.fanout100.*`: one central change reaching 100 tenant copies, inline and queued, then with default options (median of 7 after a warm-up). */
export async function syncFanout (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const figures: Figure[] = []
  try {
    let tenants: Tenant[] = []
    let globalId = ''
    for (const mode of ['inline', 'queued', 'default'] as const) {
      const app = await appOn(central.url, central.prefix, mode)
      try {
        if (tenants.length === 0) {
          ctx.log(`sync: creating ${TENANTS} tenants…`)
          tenants = await mapLimit(Array.from({ length: TENANTS }, (_, i) => i), 4, async (i) => await app.tenancy.create({ identifier: `fan-${i}` }))
          const em = app.tenancy.orm.em.fork()
          const user = em.create(CentralUserEntity, { name: 'start', email: 'fan@x.test', password: 'p' } as never)
          await em.flush()
          globalId = String(user.globalId)
          await mapLimit(tenants, 8, async (t) => { await app.tenancy.sync!.attach('users', globalId, t) })
          await app.tenancy.sync!.settle(120_000)
        }
        // Warm-up: every tenant pool opens once.
        await fanOut(app, globalId, `${mode} warm`)
        const times: number[] = []
        for (let i = 0; i < SAMPLES; i++) times.push(await fanOut(app, globalId, `${mode} ${i}`))
        await app.tenancy.sync!.settle(60_000)
        const value = round(median(times), 1)
        ctx.log(`sync ${mode}: median ${value} ms (${times.map((t) => round(t, 0)).join(', ')})`)
        const note = mode === 'default'
          ? `median of ${SAMPLES} (after 1 warm-up); as above with default options (queued, poolCap below ${TENANTS}); target ≤ 1,000`
          : `median of ${SAMPLES} (after 1 warm-up); one central flush until all ${TENANTS} tenant copies committed it (each copy's sync.saved), pools warm within the budget; target ≤ 250`
        figures.push({ name: `sync.fanout100.${mode}.ms`, value, unit: 'ms', note })
      } finally {
        await app.close()
      }
    }
    return figures
  } finally {
    await central.drop()
  }
}
