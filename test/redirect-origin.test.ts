import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import { tenancyPlugin } from '../server/index.js'
import { adminPlugin } from '../server/admin/index.js'
import { freshCentral } from './helpers/database.js'
import { AdminClient, COOKIE_SECRET, makeAdmin } from './helpers/admin.js'

/** An app on its own central database, with or without Fastify's trustProxy, an old name renamed and an admin panel. */
async function renamedApp (t: TestContext, trustProxy: boolean): Promise<FastifyInstance> {
  const central = await freshCentral(t)
  const app = Fastify({ trustProxy })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    database: { url: central.url, prefix: central.prefix },
    identification: ['subdomain', 'domain', 'path'],
    // localhost: where the admin client signs in.
    centralDomains: ['example.com', 'localhost'],
    provisioning: { spares: 0 }
  })
  await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  app.get('/who', async (request) => ({ tenant: request.tenant?.identifier ?? null }))
  app.register(async (scoped) => { scoped.get('/who', async (request) => ({ tenant: request.tenant?.identifier ?? null })) }, { prefix: '/:tenant' })
  await app.ready()
  const acme = await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  await app.tenancy.update(acme, { identifier: 'acme-two' })
  await app.tenancy.domains.add(acme, 'acme-two.test', { primary: true })
  await app.tenancy.domains.remove(acme, 'acme.test')
  return app
}

async function locationOf (app: FastifyInstance, url: string, headers: Record<string, string>): Promise<{ status: number, location: string | undefined }> {
  const res = await app.inject({ url, headers })
  return { status: res.statusCode, location: res.headers.location as string | undefined }
}

/** The hostname a browser would open for a Location, or null when it is not a redirect. */
const opened = (location: string | undefined): string | null => location === undefined ? null : new URL(location).hostname

test('without trustProxy a rename redirect keeps the checked Host port, drops a default one, and ignores forwarded headers', async (t) => {
  const app = await renamedApp(t, false)
  const cases: Array<[string, Record<string, string>, number, string | undefined]> = [
    ['/who?a=1', { host: 'acme.example.com:8080' }, 301, 'http://acme-two.example.com:8080/who?a=1'],
    ['/who', { host: 'acme.example.com:80' }, 301, 'http://acme-two.example.com/who'],
    ['/who', { host: 'acme.test:8080' }, 301, 'http://acme-two.test:8080/who'],
    ['/acme/who', { host: 'example.com:8080' }, 301, 'http://example.com:8080/acme-two/who'],
    // Not from a trusted proxy: forwarded host, port and scheme are not read.
    ['/who', { host: 'acme.example.com', 'x-forwarded-host': 'evil.test', 'x-forwarded-port': '666', 'x-forwarded-proto': 'javascript' }, 301, 'http://acme-two.example.com/who'],
    // A port that is no port is a bad host, never part of a Location.
    ['/who', { host: 'acme.example.com:@evil.test' }, 400, undefined],
    ['/who', { host: 'acme.example.com:99999' }, 400, undefined],
    ['/who', { host: 'acme.example.com:0' }, 400, undefined]
  ]
  for (const [url, headers, status, location] of cases) {
    const got = await locationOf(app, url, headers)
    assert.deepEqual(got, { status, location }, `${url} ${JSON.stringify(headers)}`)
  }
})

test('behind a trusted proxy a rename redirect takes scheme and port from the forwarded host only: a hostile Host or X-Forwarded-Port never reaches the Location', async (t) => {
  const app = await renamedApp(t, true)
  const cases: Array<[string, Record<string, string>, number, string | undefined]> = [
    // The reported open redirect: host forwarded, port from the raw Host.
    ['/who', { host: 'x:@evil.test', 'x-forwarded-host': 'acme.example.com', 'x-forwarded-proto': 'https' }, 301, 'https://acme-two.example.com/who'],
    // A proxy that sets Host to its upstream: the upstream's port stays out.
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com', 'x-forwarded-proto': 'https' }, 301, 'https://acme-two.example.com/who'],
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.test', 'x-forwarded-proto': 'https', 'x-forwarded-port': '3000' }, 301, 'https://acme-two.test/who'],
    ['/acme/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'example.com', 'x-forwarded-proto': 'https' }, 301, 'https://example.com/acme-two/who'],
    // A port the proxy forwarded with the host is kept; the scheme's default port is dropped.
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com:8443', 'x-forwarded-proto': 'https' }, 301, 'https://acme-two.example.com:8443/who'],
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com:443', 'x-forwarded-proto': 'https' }, 301, 'https://acme-two.example.com/who'],
    // A scheme that is neither http nor https is not copied.
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com', 'x-forwarded-proto': 'javascript' }, 301, 'http://acme-two.example.com/who'],
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com:@evil.test' }, 400, undefined],
    ['/who', { host: 'app-upstream:3000', 'x-forwarded-host': 'acme.example.com:1:2' }, 400, undefined]
  ]
  for (const [url, headers, status, location] of cases) {
    const got = await locationOf(app, url, headers)
    assert.deepEqual(got, { status, location }, `${url} ${JSON.stringify(headers)}`)
    if (location !== undefined) assert.notEqual(opened(got.location), 'evil.test')
  }
})

test('behind a trusted proxy the admin\'s tenant links (the bypass link here) carry the forwarded host\'s port, never the raw Host\'s', async (t) => {
  const app = await renamedApp(t, true)
  const acme = await app.tenancy.tenants.find('acme-two')
  assert.ok(acme !== null)
  const { email, password } = await makeAdmin(app, ['manage_tenants'])
  const client = new AdminClient(app)
  await client.signIn(email, password)
  const page = `/admin/tenants/${acme.key}`
  const form = await client.get(page)
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? ''
  const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  const started = await app.inject({
    method: 'POST',
    url: `${page}/maintenance`,
    payload: new URLSearchParams({ _csrf: csrf, message: '', minutes: '', allow: '' }).toString(),
    headers: { host: 'x:@evil.test', 'x-forwarded-host': 'example.com', 'x-forwarded-proto': 'https', cookie, 'content-type': 'application/x-www-form-urlencoded' }
  })
  assert.equal(started.statusCode, 303)
  for (const c of started.cookies) client.cookies.set(c.name, c.value)
  const shown = (await client.get(page)).body
  const link = /bypass link \(shown once\): (\S+?)(?:<|\s)/.exec(shown)?.[1]
  assert.equal(link?.replace(/tenancy-bypass=[\w-]+/, 'tenancy-bypass=T'), 'https://acme-two.test/?tenancy-bypass=T')
})

test('a former path prefix redirects on a host the app owns, or as a path on the host the client used (a Host or forwarded host it chose is never named); the prefix is found where the route has it, also percent-encoded', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify({ trustProxy: true })
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    database: { url: central.url, prefix: central.prefix },
    identification: ['path'],
    centralDomains: ['example.com'],
    provisioning: { spares: 0 }
  })
  app.register(async (scoped) => { scoped.get('/p/:id', async (request) => ({ tenant: request.tenant?.identifier ?? null })) }, { prefix: '/:tenant' })
  await app.ready()
  const oldco = await app.tenancy.create({ identifier: 'oldco' })
  await app.tenancy.update(oldco, { identifier: 'newco' })
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/oldco/p/1?x=oldco', { host: 'example.com' }, 'http://example.com/newco/p/1?x=oldco'],
    ['/oldco/p/1', { host: 'evil.com' }, '/newco/p/1'],
    ['/oldco/p/1', { host: 'app-upstream:3000', 'x-forwarded-host': 'attacker.example', 'x-forwarded-proto': 'https' }, '/newco/p/1'],
    // Encoded, and with the old name again further on: only the prefix changes, and the redirect does not loop.
    ['/%6fldco/p/1', { host: 'example.com' }, 'http://example.com/newco/p/1'],
    ['/%6fldco/p/oldco', { host: 'evil.com' }, '/newco/p/oldco']
  ]
  for (const [url, headers, location] of cases) {
    const got = await locationOf(app, url, headers)
    assert.deepEqual(got, { status: 301, location }, `${url} ${JSON.stringify(headers)}`)
    assert.doesNotMatch(location, /^\/\/|^\/\\|evil|attacker/)
  }
  const landed = await app.inject({ url: '/newco/p/1', headers: { host: 'evil.com' } })
  assert.equal(landed.json().tenant, 'newco')
})

test('a removed domain under a central domain redirects to the tenant under that central domain; an absolute-form request target redirects too', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, {
    database: { url: central.url, prefix: central.prefix },
    identification: ['subdomain', 'domain'],
    centralDomains: ['localhost', 'site.test'],
    provisioning: { spares: 0 }
  })
  app.get('/t', async (request) => ({ tenant: request.tenant?.identifier ?? null }))
  await app.ready()
  const globex = await app.tenancy.create({ identifier: 'globex', domains: ['shop.site.test'] })
  await app.tenancy.domains.remove(globex, 'shop.site.test')
  assert.deepEqual(await locationOf(app, '/t?a=1', { host: 'shop.site.test' }), { status: 301, location: 'http://globex.site.test/t?a=1' })
  await app.tenancy.update(globex, { identifier: 'initech' })
  assert.deepEqual(await locationOf(app, 'http://globex.site.test/t?a=1', { host: 'globex.site.test' }), { status: 301, location: 'http://initech.site.test/t?a=1' })
})
