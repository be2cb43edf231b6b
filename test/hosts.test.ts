import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import http2 from 'node:http2'
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import { freshCentral } from './helpers/database.js'
import { tenancyPlugin } from '../server/index.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

function routes (app: FastifyInstance): void {
  app.get('/whoami', { config: { tenancy: 'universal' } }, async (request) => ({ tenant: request.tenant?.identifier ?? null }))
  app.get('/central', { config: { tenancy: 'central' } }, async () => ({ central: true }))
}

const who = async (app: FastifyInstance, host: string): Promise<{ status: number, tenant?: string | null, code?: string }> => {
  const res = await app.inject({ url: '/whoami', headers: { host } })
  const body = res.json()
  return res.statusCode === 200 ? { status: 200, tenant: body.tenant } : { status: res.statusCode, code: body.code }
}

test('mixed-case hosts and one trailing dot name the same tenant, and mixed-case central hosts are served', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['example.com', 'localhost'], identification: ['subdomain', 'domain'] }, routes)
  await app.tenancy.create({ identifier: 'acme', domains: ['acme.test'] })
  for (const host of ['ACME.example.com', 'acme.example.com.', 'ACME.Example.COM.', 'Acme.Example.Com:8080', 'acme.example.com.:8080', 'ACME.TEST', 'acme.test.']) {
    assert.deepEqual(await who(app, host), { status: 200, tenant: 'acme' }, host)
  }
  for (const host of ['Example.COM', 'example.com.', 'LOCALHOST:3000', 'LocalHost.']) {
    const res = await app.inject({ url: '/central', headers: { host } })
    assert.equal(res.statusCode, 200, host)
    assert.deepEqual(await who(app, host), { status: 200, tenant: null }, host)
  }
  // Only one dot goes: two are still a malformed host.
  assert.deepEqual(await who(app, 'acme.example.com..'), { status: 400, code: 'FST_TENANCY_INVALID_HOST' })
})

test('a central domain inside another stays central, whichever order the option lists them in', async (t) => {
  for (const centralDomains of [['site.com', 'blog.site.com'], ['blog.site.com', 'site.com']]) {
    const { app } = await buildApp(t, { centralDomains, identification: ['subdomain', 'domain'] }, routes)
    await app.tenancy.create({ identifier: 'acme' })
    const label = centralDomains.join(' then ')
    for (const host of ['blog.site.com', 'BLOG.site.com.', 'site.com']) {
      assert.deepEqual(await who(app, host), { status: 200, tenant: null }, `${host} with ${label}`)
      assert.equal((await app.inject({ url: '/central', headers: { host } })).statusCode, 200, `${host} with ${label}`)
    }
    // Tenants sit one label under the longest central domain that holds them.
    assert.deepEqual(await who(app, 'acme.site.com'), { status: 200, tenant: 'acme' }, label)
    assert.deepEqual(await who(app, 'acme.blog.site.com'), { status: 200, tenant: 'acme' }, label)
  }
})

/** Sends one raw HTTP/1.1 request (inject cannot repeat a header) and returns the status and body. */
async function rawRequest (port: number, head: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.write(head + 'Connection: close\r\n\r\n') })
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => { data += chunk })
    socket.on('error', reject)
    socket.on('end', () => {
      const [top = '', body = ''] = data.split('\r\n\r\n')
      resolve({ status: Number(top.split(' ')[1]), body })
    })
  })
}

test('a request with two Host headers, or a request line naming another host, gets 400 FST_TENANCY_DUPLICATE_HOST on every kind of route', async (t) => {
  const { app } = await buildApp(t, { centralDomains: ['localhost'], identification: ['subdomain', 'header'] }, routes)
  await app.tenancy.create({ identifier: 'acme' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const one = await rawRequest(port, 'GET /whoami HTTP/1.1\r\nHost: acme.localhost\r\n')
  assert.deepEqual({ status: one.status, body: JSON.parse(one.body) }, { status: 200, body: { tenant: 'acme' } })
  for (const [url, hosts] of [['/whoami', ['acme.localhost', 'globex.localhost']], ['/whoami', ['localhost', 'acme.localhost']], ['/central', ['localhost', 'localhost']]] as const) {
    const res = await rawRequest(port, `GET ${url} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}X-Tenant: acme\r\n`)
    assert.equal(res.status, 400, `${url} ${hosts.join(', ')}`)
    assert.equal(JSON.parse(res.body).code, 'FST_TENANCY_DUPLICATE_HOST')
  }
  // An absolute-form request line names a host too: another one than Host's is refused, the same one (any case, default port) is served.
  const other = await rawRequest(port, 'GET http://globex.localhost/whoami HTTP/1.1\r\nHost: acme.localhost\r\n')
  assert.deepEqual({ status: other.status, code: JSON.parse(other.body).code }, { status: 400, code: 'FST_TENANCY_DUPLICATE_HOST' })
  const same = await rawRequest(port, 'GET http://ACME.localhost:80/whoami HTTP/1.1\r\nHost: acme.localhost\r\n')
  assert.deepEqual({ status: same.status, body: JSON.parse(same.body) }, { status: 200, body: { tenant: 'acme' } })
})

test('over HTTP/2 the tenant comes from :authority, as Fastify reads the host', async (t) => {
  // Dropped after the app is closed, never under its open connections.
  const central = await freshCentral(null)
  const app = Fastify({ http2: true })
  t.after(async () => { await app.close(); await central.drop() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, centralDomains: ['localhost'], identification: ['subdomain'] })
  routes(app as unknown as FastifyInstance)
  await app.ready()
  await app.tenancy.create({ identifier: 'acme' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const client = http2.connect(`http://127.0.0.1:${port}`)
  const get = async (authority: string, path: string): Promise<{ status: number, body: any }> => await new Promise((resolve, reject) => {
    const stream = client.request({ ':path': path, ':authority': authority })
    let status = 0
    let body = ''
    stream.on('response', (headers) => { status = Number(headers[':status']) })
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => { body += chunk })
    stream.on('end', () => { resolve({ status, body: JSON.parse(body) }) })
    stream.on('error', reject)
  })
  assert.deepEqual(await get(`ACME.localhost:${port}`, '/whoami'), { status: 200, body: { tenant: 'acme' } })
  assert.deepEqual(await get(`localhost:${port}`, '/central'), { status: 200, body: { central: true } })
  await new Promise<void>((resolve) => { client.close(resolve) })
})
