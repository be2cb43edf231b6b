import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './helpers/app.js'
import type { ImpersonationUse } from '../server/index.js'

const routes = (app: FastifyInstance): void => {
  // The app reads the impersonated user from request.impersonation (the documented hook).
  app.get('/', async (request) => ({ tenant: request.tenant?.identifier, user: request.impersonation?.userId ?? null, by: request.impersonation?.admin.email ?? null }))
}

test('an impersonation link opens the tenant app as the user once, and the user can end it', async (t) => {
  const now = Date.now()
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'], clock: () => now }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await app.tenancy.create({ identifier: 'bob' })
  const uses: ImpersonationUse[] = []
  app.tenancy.impersonation.onUse((use) => { uses.push(use) })
  // The end button is a plain HTML form: an empty urlencoded post.
  const visit = async (host: string, url: string, cookie?: string, method: 'GET' | 'POST' = 'GET'): Promise<any> =>
    await app.inject({ method, url, headers: { host, ...(cookie === undefined ? {} : { cookie }), ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }, ...(method === 'POST' ? { payload: '' } : {}) })

  const { token } = await app.tenancy.impersonation.issue({ tenant: acme, userId: 'user-7', admin: { id: null, email: 'ops@example.test' } })
  const landed = await visit('acme.example.com', `/_tenancy/impersonate?token=${token}`)
  assert.equal(landed.statusCode, 303)
  assert.equal(landed.headers.location, '/')
  const session = landed.cookies.find((c: { name: string }) => c.name === 'tenancy_impersonation')
  assert.ok(session?.httpOnly)
  const cookie = `tenancy_impersonation=${session.value}`
  assert.deepEqual((await visit('acme.example.com', '/', cookie)).json(), { tenant: 'acme', user: 'user-7', by: 'ops@example.test' })
  assert.equal((await visit('bob.example.com', '/', cookie)).json().user, null, 'the session is bound to its tenant')
  assert.equal((await visit('acme.example.com', '/')).json().user, null, 'without the cookie, nobody is impersonated')

  const again = await visit('acme.example.com', `/_tenancy/impersonate?token=${token}`)
  assert.equal(again.statusCode, 403)
  assert.equal(again.json().code, 'FST_TENANCY_IMPERSONATION_REFUSED')
  assert.match(again.json().message, /used already/)

  const ended = await visit('acme.example.com', '/_tenancy/impersonate/end', cookie, 'POST')
  assert.equal(ended.statusCode, 303)
  assert.equal(ended.cookies.find((c: { name: string }) => c.name === 'tenancy_impersonation')?.value, '')
  assert.equal((await visit('acme.example.com', '/', cookie)).json().user, null, 'an ended session no longer counts, even with the old cookie')

  assert.deepEqual(uses.map((u) => u.action), ['issued', 'started', 'refused', 'ended'])
  assert.ok(uses.every((u) => u.tenant.key === acme.key && u.userId === 'user-7'))
})

test('a link used for another tenant, late, or unknown is refused with FST_TENANCY_IMPERSONATION_REFUSED and burnt', async (t) => {
  let now = Date.now()
  const { app } = await buildApp(t, { identification: ['subdomain'], centralDomains: ['example.com'], clock: () => now }, routes)
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await app.tenancy.create({ identifier: 'bob' })
  const land = async (host: string, token: string): Promise<any> => await app.inject({ url: `/_tenancy/impersonate?token=${token}`, headers: { host } })

  const forAcme = await app.tenancy.impersonation.issue({ tenant: acme, userId: 'user-1' })
  const elsewhere = await land('bob.example.com', forAcme.token)
  assert.equal(elsewhere.statusCode, 403)
  assert.equal(elsewhere.json().code, 'FST_TENANCY_IMPERSONATION_REFUSED')
  assert.match(elsewhere.json().message, /another tenant/)
  assert.equal(elsewhere.cookies.length, 0)
  assert.match((await land('acme.example.com', forAcme.token)).json().message, /used already/, 'a refused link is burnt')

  const late = await app.tenancy.impersonation.issue({ tenant: acme, userId: 'user-1' })
  now += 60_001
  const expired = await land('acme.example.com', late.token)
  assert.equal(expired.statusCode, 403)
  assert.match(expired.json().message, /expired/)

  const unknown = await land('acme.example.com', 'made-up-token')
  assert.equal(unknown.statusCode, 403)
  assert.equal(unknown.json().code, 'FST_TENANCY_IMPERSONATION_REFUSED')
  assert.equal((await land('acme.example.com', '')).statusCode, 403)

  // Two instances racing for one link: exactly one gets in.
  const raced = await app.tenancy.impersonation.issue({ tenant: acme, userId: 'user-2' })
  now = Date.now()
  const both = await Promise.all([land('acme.example.com', raced.token), land('acme.example.com', raced.token)])
  assert.deepEqual(both.map((r) => r.statusCode).sort(), [303, 403])
})
