import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tenancyPlugin } from '../server/index.js'
import { freshCentral, type CentralDatabase } from './helpers/database.js'

const who = async (request: { tenant: { identifier: string } | null }): Promise<{ tenant: string | null }> => ({ tenant: request.tenant?.identifier ?? null })
const options = (central: CentralDatabase): Parameters<typeof tenancyPlugin>[1] => ({
  database: { url: central.url, prefix: central.prefix },
  identification: ['subdomain'],
  centralDomains: ['example.com'],
  provisioning: { spares: 0 },
  cache: { listen: false }
})

/** What each host gets on `url`: a known tenant, an unknown one, the central domain, a foreign host. */
async function answers (app: FastifyInstance, url: string): Promise<Record<string, [number, string | null]>> {
  const seen: Record<string, [number, string | null]> = {}
  for (const host of ['acme.example.com', 'nobody.example.com', 'example.com', 'evil.com']) {
    const res = await app.inject({ url, headers: { host } })
    const body = res.json()
    seen[host] = [res.statusCode, body.code ?? body.tenant ?? null]
  }
  return seen
}

const GUARDED = {
  'acme.example.com': [200, 'acme'],
  'nobody.example.com': [404, 'FST_TENANCY_UNKNOWN_TENANT'],
  'example.com': [404, 'FST_TENANCY_NOT_IDENTIFIED'],
  'evil.com': [404, 'FST_TENANCY_NOT_IDENTIFIED']
}

/** Builds an app in one registration style on its own central database, with tenant acme. */
async function styled (t: TestContext, declare: (app: FastifyInstance, central: CentralDatabase) => void): Promise<FastifyInstance> {
  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  declare(app, central)
  await app.ready()
  await app.tenancy.create({ identifier: 'acme' })
  return app
}

test('every registration style gets the tenancy decision: an unknown host gets 404 and the tenant\'s host its tenant', async (t) => {
  const styles: Record<string, [(app: FastifyInstance, central: CentralDatabase) => void, string]> = {
    'registered with await, then the route': [(app, central) => {
      app.register(tenancyPlugin, options(central)).after(() => { app.get('/x', who) })
    }, '/x'],
    'registered without await, then the route (CommonJS style)': [(app, central) => {
      app.register(tenancyPlugin, options(central))
      app.get('/x', who)
    }, '/x'],
    'the route declared before the plugin': [(app, central) => {
      app.get('/x', who)
      app.register(tenancyPlugin, options(central))
    }, '/x'],
    'an encapsulated plugin registered after it, without await': [(app, central) => {
      app.register(tenancyPlugin, options(central))
      app.register(async (scoped) => { scoped.get('/x', who) }, { prefix: '/api' })
    }, '/api/x'],
    'a fastify-plugin plugin registered before it': [(app, central) => {
      app.register(fp(async (shared) => { shared.get('/x', who) }))
      app.register(tenancyPlugin, options(central))
    }, '/x'],
    'a fastify-plugin plugin registered after it': [(app, central) => {
      app.register(tenancyPlugin, options(central))
      app.register(fp(async (shared) => { shared.get('/x', who) }))
    }, '/x'],
    'a route inside a plugin nested in one registered before it, declared with fastify-plugin': [(app, central) => {
      app.register(fp(async (outer) => { await outer.register(fp(async (inner) => { inner.get('/x', who) })) }))
      app.register(tenancyPlugin, options(central))
    }, '/x'],
    'an onRoute hook added after it that assigns route.onRequest (an auth hook)': [(app, central) => {
      app.register(tenancyPlugin, options(central)).after(() => {
        app.addHook('onRoute', (route) => { if ((route.config as { auth?: boolean } | undefined)?.auth === true) route.onRequest = async function auth () {} })
        app.get('/x', { config: { auth: true } as never }, who)
      })
    }, '/x'],
    'an onRoute hook added after it that assigns an array, shared by its routes': [(app, central) => {
      const shared = [async function audit () {}]
      app.register(tenancyPlugin, options(central)).after(() => {
        app.addHook('onRoute', (route) => { route.onRequest = shared })
        app.get('/x', who)
        app.get('/y', who)
      })
    }, '/x']
  }
  for (const [style, [declare, url]] of Object.entries(styles)) {
    const app = await styled(t, declare)
    assert.deepEqual(await answers(app, url), GUARDED, style)
  }
})

test('route modes hold on the fallback path: a central route declared before the plugin is served on the central domain only, a universal one on both', async (t) => {
  const app = await styled(t, (app, central) => {
    app.get('/central', { config: { tenancy: 'central' } }, who)
    app.get('/universal', { config: { tenancy: 'universal' } }, who)
    app.post('/body', async (request) => ({ tenant: request.tenant?.identifier ?? null, body: request.body }))
    app.register(tenancyPlugin, options(central))
  })
  assert.deepEqual((await app.inject({ url: '/central', headers: { host: 'example.com' } })).json(), { tenant: null })
  assert.equal((await app.inject({ url: '/central', headers: { host: 'acme.example.com' } })).json().code, 'FST_TENANCY_CENTRAL_ONLY')
  assert.deepEqual((await app.inject({ url: '/universal', headers: { host: 'example.com' } })).json(), { tenant: null })
  assert.deepEqual((await app.inject({ url: '/universal', headers: { host: 'acme.example.com' } })).json(), { tenant: 'acme' })
  assert.equal((await app.inject({ url: '/universal', headers: { host: 'nobody.example.com' } })).statusCode, 404)
  const posted = await app.inject({ method: 'POST', url: '/body', payload: { a: 1 }, headers: { host: 'acme.example.com' } })
  assert.deepEqual(posted.json(), { tenant: 'acme', body: { a: 1 } })
  assert.equal((await app.inject({ method: 'POST', url: '/body', payload: { a: 1 }, headers: { host: 'evil.com' } })).statusCode, 404)
  assert.match((await app.inject({ url: '/nothing-here', headers: { host: 'evil.com' } })).json().message, /^Route GET:\/nothing-here not found$/, 'an unknown path stays Fastify\'s 404')
})

test('an onRoute hook that takes the tenancy hook out of route.onRequest, or a route config.tenancy that is no mode, fails ready() naming the route', async (t) => {
  const central = await freshCentral(t)
  const removed = Fastify()
  t.after(async () => { await removed.close() })
  await removed.register(tenancyPlugin, options(central))
  removed.addHook('onRoute', (route) => { if (route.url === '/cut' && Array.isArray(route.onRequest)) route.onRequest.length = 0 })
  removed.get('/cut', who)
  removed.get('/kept', who)
  await assert.rejects(async () => { await removed.ready() }, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_ROUTE_UNGUARDED')
    assert.match(error.message, /^These routes cannot get the tenancy decision: GET \/cut\. Their tenancy onRequest hook was removed/)
    return true
  })

  for (const [config, message] of [
    [{ tenancy: 'tenants' }, /^Option "config\.tenancy of route GET \/billing" must be one of "tenant", "central", "universal" \(got "tenants"\)\.$/],
    [{ tenancy: { mode: 'Tenant' } }, /^Option "config\.tenancy of route GET \/billing" \.mode must be one of .* \(got "Tenant"\)\.$/],
    [{ tenancy: { requires: 5 } }, /\.requires must be a migration name or an array of them/],
    [{ tenancy: { mdoe: 'central' } }, /has an unknown property "mdoe"/]
  ] as const) {
    const app = Fastify()
    t.after(async () => { await app.close() })
    await app.register(tenancyPlugin, options(central))
    app.get('/billing', { config: config as never }, who)
    await assert.rejects(async () => { await app.ready() }, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'FST_TENANCY_INVALID_OPTION', JSON.stringify(config))
      assert.match(error.message, message)
      return true
    })
  }

  // Declared before the plugin (its fallback decides; ready() cannot read its config): a mode that is none fails closed.
  const early = Fastify()
  t.after(async () => { await early.close() })
  early.get('/x', { config: { tenancy: 'optional' } }, who)
  early.register(tenancyPlugin, options(central))
  await early.ready()
  await early.tenancy.create({ identifier: 'acme' })
  assert.deepEqual(await answers(early, '/x'), GUARDED)
})

test('a route outside the instance the plugin is registered on cannot be guarded: ready() fails with FST_TENANCY_ROUTE_UNGUARDED naming it', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  app.get('/health', who)
  app.register(async (tenantApi) => {
    await tenantApi.register(tenancyPlugin, options(central))
    tenantApi.get('/inside', who)
  })
  app.register(async (other) => {
    other.get('/invoices/:id', who)
    other.route({ method: ['POST', 'PUT'], url: '/invoices', handler: who })
  }, { prefix: '/api' })
  await assert.rejects(async () => { await app.ready() }, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_ROUTE_UNGUARDED')
    assert.match(error.message, /^These routes cannot get the tenancy decision: POST, PUT \/api\/invoices; GET \/api\/invoices\/:id; GET \/health\. They are outside the Fastify instance/)
    assert.doesNotMatch(error.message, /\/inside/)
    return true
  })

  // The same without any route before the plugin (so without its fallback): the route outside is still found.
  const second = Fastify()
  t.after(async () => { await second.close() })
  second.register(async (tenantApi) => {
    await tenantApi.register(tenancyPlugin, options(central))
    tenantApi.get('/inside', who)
  })
  second.register(async (other) => { other.get('/', who) }, { prefix: '/outside' })
  await assert.rejects(async () => { await second.ready() }, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_ROUTE_UNGUARDED')
    assert.match(error.message, /^These routes cannot get the tenancy decision: GET \/outside; GET \/outside\/\. They are/)
    return true
  })
})

test('routes in encapsulated plugins registered before the plugin, awaited or not, get the tenancy decision too', async (t) => {
  for (const awaited of [false, true]) {
    const central = await freshCentral(t)
    const app = Fastify()
    t.after(async () => { await app.close() })
    const early = app.register(async (scoped) => { scoped.get('/x', who) }, { prefix: '/early' })
    if (awaited) await early
    app.register(tenancyPlugin, options(central))
    await app.ready()
    await app.tenancy.create({ identifier: 'acme' })
    assert.deepEqual(await answers(app, '/early/x'), GUARDED, awaited ? 'awaited' : 'not awaited')
  }
})

test('a CommonJS app (require, register without await, then the route) gets the tenancy decision on every host', async (t) => {
  const central = await freshCentral(t)
  const run = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'fixtures', 'commonjs-app.cjs')], {
      env: { ...process.env, TENANCY_ENTRY: join(process.cwd(), 'server', 'index.ts'), CENTRAL_URL: central.url, TENANT_PREFIX: central.prefix },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += String(d) })
    child.stderr.on('data', (d) => { stderr += String(d) })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
  assert.equal(run.code, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout), GUARDED)
})
