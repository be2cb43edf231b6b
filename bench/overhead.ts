import type { ChildProcess } from 'node:child_process'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { benchCentral } from './central.js'
import { pin, startServer, stopServer } from './server-process.js'
import { median, round, type BenchContext, type Figure } from './figures.js'
import { TEST_TENANT_SCHEMA } from '../test/helpers/tenant-schema.js'

const SERVER = new URL('./server.ts', import.meta.url)

const ROUNDS = 8
const SECONDS = 3

async function load (port: number, host: string, seconds: number): Promise<number> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/hello`, headers: { host }, connections: 10, pipelining: 1, duration: seconds })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`the server answered ${result.non2xx} non-2xx and ${result.errors} errors`)
  return result.requests.average
}

/**
 * A bare Fastify route against the same route behind tenant resolution (cache
 * warm, subdomain resolver), alternating so the noise of a shared machine
 * falls on every side alike. A third side runs the bare route inside an
 * AsyncLocalStorage and nothing else: the share of the overhead that is
 * Node's own price for a context that follows a request's awaits.
 */
export async function overhead (ctx: BenchContext): Promise<Figure[]> {
  const central = await benchCentral(ctx.serverUrl)
  const servers: ChildProcess[] = []
  try {
    // The tenant the requests name, made once.
    const setup = Fastify({ logger: false })
    await setup.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, cache: { listen: false } })
    await setup.tenancy.create({ identifier: 'acme' })
    await setup.close()

    pin(process.pid, 1)
    const bare = await startServer(SERVER, ['bare'])
    const context = await startServer(SERVER, ['context'])
    const tenant = await startServer(SERVER, ['tenant', central.url, central.prefix])
    servers.push(bare.child, context.child, tenant.child)
    // Warm them up (JIT) before measuring.
    await load(bare.port, 'acme.localhost', 2)
    await load(context.port, 'acme.localhost', 2)
    await load(tenant.port, 'acme.localhost', 2)
    const bareRps: number[] = []
    const tenantRps: number[] = []
    const ratios: number[] = []
    const contextRatios: number[] = []
    const ofContext: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const a = await load(bare.port, 'acme.localhost', SECONDS)
      const c = await load(context.port, 'acme.localhost', SECONDS)
      const b = await load(tenant.port, 'acme.localhost', SECONDS)
      bareRps.push(a)
      tenantRps.push(b)
      ratios.push(b / a)
      contextRatios.push(c / a)
      ofContext.push(b / c)
      ctx.log(`overhead round ${i + 1}: bare ${Math.round(a)} req/s, bare in an AsyncLocalStorage ${Math.round(c)} req/s, tenant ${Math.round(b)} req/s, ratio ${round(b / a)}`)
    }
    return [
      { name: 'overhead.bare.rps', value: Math.round(median(bareRps)), unit: 'req/s', note: `median of ${ROUNDS} rounds of ${SECONDS}s` },
      { name: 'overhead.tenant.rps', value: Math.round(median(tenantRps)), unit: 'req/s', note: 'subdomain resolution, cache warm' },
      { name: 'overhead.ratio', value: round(median(ratios)), unit: 'ratio', note: 'tenant ÷ bare, median per round; target ≥ 0.90' },
      { name: 'overhead.ratio.spread', value: round(Math.max(...ratios) - Math.min(...ratios)), unit: 'ratio', note: 'max − min of the per-round ratios' },
      { name: 'overhead.context.ratio', value: round(median(contextRatios)), unit: 'ratio', note: 'the bare route run inside an AsyncLocalStorage (one run() per request, as the plugin does) ÷ bare, same rounds: what keeping a context across awaits costs on this Node by itself' },
      { name: 'overhead.ofContext', value: round(median(ofContext)), unit: 'ratio', note: 'tenant ÷ the bare route inside an AsyncLocalStorage, same rounds: what resolution costs beyond the context itself' }
    ]
  } finally {
    for (const child of servers) await stopServer(child)
    await central.drop()
  }
}
