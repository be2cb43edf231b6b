import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { tenancyPlugin, GenericTenant, type Tenant, type TenantProvider } from '../server/index.js'
import { freshCentral } from './helpers/database.js'
import { TEST_TENANT_SCHEMA } from './helpers/tenant-schema.js'

/** Teams live in the app's own store here: a provider driver of its own. */
function teamsDriver (
  teams: Map<string, Tenant>, seen: { tenantsAround: Set<string | undefined> }, current: () => Tenant | null
): Record<string, () => TenantProvider> {
  const byKey = new Map([...teams.values()].map((t) => [t.key, t]))
  return {
    teams: () => ({
      name: 'teams',
      byIdentifier: async (identifier) => {
        // A team is looked up inside the tenant's context: teams resolve after tenants.
        seen.tenantsAround.add(current()?.identifier)
        return teams.get(identifier) ?? null
      },
      byKey: async (key) => byKey.get(key) ?? null,
      byResourceKey: async () => null
    })
  }
}

test('two tenancies registered together (tenants by subdomain, teams by path) keep their own tenant and context through 10,000 interleaved requests', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, identification: ['subdomain'], centralDomains: ['example.com'] })
  const teams = new Map<string, Tenant>()
  const seen = { tenantsAround: new Set<string | undefined>() }
  for (const name of ['red', 'blue', 'green', 'gold']) teams.set(name, new GenericTenant({ key: uuidv7(), identifier: name, name: `Team ${name}`, status: 'active' }))
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    name: 'teams',
    database: { url: central.url, prefix: `${central.prefix}team_` },
    orm: app.tenancy.orm,
    identification: ['path'],
    pathParameter: 'team',
    provider: { driver: 'teams' },
    providerDrivers: teamsDriver(teams, seen, () => app.tenancy.current()),
    defaultRouteMode: 'universal',
    cache: { listen: false }
  })
  app.get('/teams/:team/whoami', { config: { tenancies: { teams: 'tenant' } } }, async (request) => {
    // Both contexts hold across an await.
    await new Promise((resolve) => setImmediate(resolve))
    return {
      tenant: request.tenancies.tenants?.tenant?.identifier,
      team: request.tenancies.teams?.tenant?.identifier,
      short: request.tenant?.identifier,
      tenantContext: app.tenancy.current()?.identifier,
      teamContext: app.tenancies.teams?.current()?.identifier,
      params: request.params
    }
  })
  app.get('/plain', async (request) => ({ tenant: request.tenant?.identifier, team: request.tenancies.teams?.tenant ?? null }))
  await app.ready()
  assert.equal(app.tenancies.tenants, app.tenancy, 'the default registration keeps app.tenancy')
  for (const identifier of ['acme', 'bob', 'cyan']) await app.tenancy.create({ identifier })

  const tenantNames = ['acme', 'bob', 'cyan']
  const teamNames = [...teams.keys()]
  let mixups = 0
  let done = 0
  for (let batch = 0; batch < 50; batch++) {
    const asked = Array.from({ length: 200 }, (_, i) =>
      ({ tenant: tenantNames[(batch * 7 + i) % 3] as string, team: teamNames[(batch + i * 3) % 4] as string }))
    const answers = await Promise.all(asked.map(async (a) => await app.inject({ url: `/teams/${a.team}/whoami`, headers: { host: `${a.tenant}.example.com` } })))
    answers.forEach((res, i) => {
      const a = asked[i] as { tenant: string, team: string }
      const body = res.json()
      done++
      if (res.statusCode !== 200 || body.tenant !== a.tenant || body.short !== a.tenant || body.tenantContext !== a.tenant ||
          body.team !== a.team || body.teamContext !== a.team || Object.keys(body.params).length !== 0) mixups++
    })
  }
  assert.equal(done, 10_000)
  assert.equal(mixups, 0)
  assert.ok(!seen.tenantsAround.has(undefined) && seen.tenantsAround.size > 0, 'teams were looked up inside a tenant context')

  assert.deepEqual((await app.inject({ url: '/plain', headers: { host: 'acme.example.com' } })).json(), { tenant: 'acme', team: null }, 'a route without a team is universal for teams')
  const unknownTeam = await app.inject({ url: '/teams/nobody/whoami', headers: { host: 'acme.example.com' } })
  assert.equal(unknownTeam.statusCode, 404)
  assert.equal(unknownTeam.json().code, 'FST_TENANCY_UNKNOWN_TENANT')
  const noTenant = await app.inject({ url: '/teams/red/whoami', headers: { host: 'nobody.example.com' } })
  assert.equal(noTenant.statusCode, 404)
  const teamStats = app.tenancies.teams?.stats().tenants ?? {}
  assert.equal(Object.values(teamStats).reduce((n, s) => n + s.requests, 0), 10_000, 'each tenancy counts its own requests')
})

test('registering two tenancies under one name is refused at register', async (t) => {
  const central = await freshCentral(t)
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix } })
  await assert.rejects(async () => {
    await app.register(tenancyPlugin, { ...TEST_TENANT_SCHEMA, database: { url: central.url, prefix: central.prefix }, orm: app.tenancy.orm })
  }, { code: 'FST_TENANCY_MISCONFIGURED', message: /registered twice under the name "tenants"/ })
})
