import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { adminPlugin } from '../server/admin/index.js'
import { AdminClient, COOKIE_SECRET, buildAdminApp, makeAdmin } from './helpers/admin.js'
import { buildApp } from './helpers/app.js'
import { freshCentral, sql } from './helpers/database.js'
import { logicalServers } from './helpers/moves.js'
import { until, within } from './helpers/poll.js'

let servers: Awaited<ReturnType<typeof logicalServers>>
before(async () => { servers = await logicalServers() })
after(async () => { await servers?.stop() })

test('an admin moves a tenant to another host from its page: the move runs in the background, the status page follows its steps to the outcome', async (t) => {
  const central = await freshCentral(null, servers.a.url)
  t.after(async () => { await central.drop() })
  const { app } = await buildApp(t, { identification: ['subdomain', 'domain'], database: { hosts: servers.hosts, defaultHost: 'a' }, provisioning: { spares: 0 }, moves: { drainMs: 1000 } }, async (app) => {
    await app.register(adminPlugin, { cookieSecret: COOKIE_SECRET, secureCookies: false })
  }, central)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', databaseHost: 'a' })
  const owner = await makeAdmin(app, ['manage_tenants', 'move_tenants'])
  const client = new AdminClient(app)
  await client.signIn(owner.email, owner.password)
  const page = `/admin/tenants/${acme.key}`

  assert.match((await client.get(page)).body, new RegExp(`href="${page}/move"`), 'the tenant page offers Move')
  const form = await client.get(`${page}/move`)
  assert.match(form.body, /<option value="b">b<\/option>/, 'the form offers the other host')
  assert.doesNotMatch(form.body, /<option value="a">/, 'not the host it is on')
  const unknown = await client.post(`${page}/move`, { host: 'nowhere' }, { from: `${page}/move` })
  assert.equal(unknown.statusCode, 422)

  const started = await client.post(`${page}/move`, { host: 'b' }, { from: `${page}/move` })
  assert.equal(started.statusCode, 303, started.body)
  assert.equal(started.headers.location, `${page}/move/status`)
  const first = await client.get(`${page}/move/status`)
  assert.match(first.body, /id="move-progress"/)
  assert.match(first.body, /Moving to host b|Moving acme to host b/)
  // The audit log held: the move is recorded done, but its outcome is not in the log yet, so the page still follows it.
  const holder = new pg.Client({ connectionString: central.url })
  holder.on('error', () => {})
  await holder.connect()
  let finishing: string
  let second: Awaited<ReturnType<typeof client.post>>
  try {
    await holder.query('begin')
    await holder.query('lock table tenancy.admin_audit_log in exclusive mode')
    await until(async () => (await app.tenancy.moves.status(acme))?.state, { is: (state) => state === 'done', timeoutMs: 120_000, what: 'the move is recorded done' })
    finishing = (await client.get(`${page}/move/status`)).body
    // A second POST while this process still drives the move: its page, and no second start in the log
    // (a write to the log would wait for the lock, and the answer would not come).
    second = await within(client.post(`${page}/move`, { host: 'b' }, { from: `${page}/move` }), { what: 'a second POST while the move runs is answered without writing the audit log', timeoutMs: 10_000 })
  } finally {
    await holder.query('commit')
    await holder.end()
  }
  assert.doesNotMatch(finishing, /id="move-outcome"/, 'no outcome shown before the audit log has it')
  assert.equal(second.statusCode, 303)
  assert.equal(second.headers.location, `${page}/move/status`)
  assert.match(finishing, /http-equiv="refresh"/)
  let done = ''
  await until(async () => {
    done = (await client.get(`${page}/move/status`)).body
    return done.includes('id="move-outcome"')
  }, { timeoutMs: 120_000, what: 'the move ends' })
  assert.match(done, /Moved: acme serves from host b/)
  assert.doesNotMatch(done, /http-equiv="refresh"/, 'the page stops looking again once the move is over')
  assert.equal((await app.tenancy.tenants.find(acme.key))?.databaseHost, 'b')
  const actions = (await sql<{ action: string }>(central.url, 'select action from tenancy.admin_audit_log where tenant_key = $1 order by id', [acme.key])).map((r) => r.action)
  assert.deepEqual(actions.filter((a) => a.startsWith('tenant.move')), ['tenant.move.start', 'tenant.move.done'])

  // Back to where it is: refused on the form, with the core's sentence.
  const again = await client.post(`${page}/move`, { host: 'b' }, { from: `${page}/move` })
  assert.equal(again.statusCode, 409)
  assert.match(again.body, /on host &quot;b&quot; already|on host "b" already/)
})

test('an admin exports a tenant and imports the bundle under a new identifier; under its own identifier it is refused on the form', async (t) => {
  const { app } = await buildAdminApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme', domains: ['acme.example.test'] })
  await app.tenancy.run(acme, async (scope) => { await scope.em.getConnection().execute('insert into projects (title) values (\'one\'), (\'two\'), (\'three\')') })
  const owner = await makeAdmin(app, ['manage_tenants', 'move_tenants'])
  const client = new AdminClient(app)
  await client.signIn(owner.email, owner.password)

  const exported = await client.get(`/admin/tenants/${acme.key}/export`)
  assert.equal(exported.statusCode, 200)
  assert.equal(exported.headers['content-disposition'], 'attachment; filename="acme.tenancy"')
  const bundle = exported.rawPayload
  assert.ok(bundle.length > 100)

  const refused = await client.upload('/admin/tenants/import', { as: '', host: 'default' }, { bundle: { filename: 'acme.tenancy', data: bundle } }, '/admin/tenants/import')
  assert.equal(refused.statusCode, 422)
  assert.match(refused.body, /id="import-error"[^>]*>[^<]*acme/)
  const empty = await client.upload('/admin/tenants/import', { as: 'x' }, {}, '/admin/tenants/import')
  assert.equal(empty.statusCode, 422)
  assert.match(empty.body, /Choose a bundle file/)
  const garbage = await client.upload('/admin/tenants/import', { as: 'garbage' }, { bundle: { filename: 'x.tenancy', data: Buffer.from('not a bundle at all\n') } }, '/admin/tenants/import')
  assert.equal(garbage.statusCode, 422, garbage.body.slice(0, 500))
  assert.equal(await app.tenancy.tenants.byIdentifier('garbage'), null, 'nothing is left of a refused bundle')

  const imported = await client.upload('/admin/tenants/import', { as: 'acme-copy', host: 'default' }, { bundle: { filename: 'acme.tenancy', data: bundle } }, '/admin/tenants/import')
  assert.equal(imported.statusCode, 303, imported.body.slice(0, 500))
  const copy = await app.tenancy.tenants.byIdentifier('acme-copy')
  assert.ok(copy !== null && copy.key !== acme.key)
  assert.equal(imported.headers.location, `/admin/tenants/${copy.key}`)
  const titles = await app.tenancy.run(copy, async (scope) => await scope.em.getConnection().execute('select title from projects order by title'))
  assert.deepEqual(titles.map((r) => String(r.title)), ['one', 'three', 'two'])
  assert.deepEqual(await app.tenancy.domains.list(copy), [], 'a copy under a new identifier gets no domains')
})

test('only an admin with move_tenants sees Move, Export and Import; the others get 403 on their pages', async (t) => {
  const { app } = await buildAdminApp(t)
  const acme = await app.tenancy.create({ identifier: 'acme', name: 'Acme' })
  const plain = await makeAdmin(app, ['manage_tenants'])
  const mover = await makeAdmin(app, ['manage_tenants', 'move_tenants'])
  const plainClient = new AdminClient(app)
  await plainClient.signIn(plain.email, plain.password)
  const moverClient = new AdminClient(app)
  await moverClient.signIn(mover.email, mover.password)
  const page = `/admin/tenants/${acme.key}`
  for (const [client, shown] of [[plainClient, false], [moverClient, true]] as const) {
    const body = (await client.get(page)).body
    assert.equal(body.includes(`href="${page}/move"`), shown, `Move ${shown ? 'shown' : 'hidden'}`)
    assert.equal(body.includes(`href="${page}/export"`), shown, `Export ${shown ? 'shown' : 'hidden'}`)
    assert.equal((await client.get('/admin/tenants')).body.includes('href="/admin/tenants/import"'), shown, `Import ${shown ? 'shown' : 'hidden'}`)
  }
  for (const url of [`${page}/move`, `${page}/move/status`, `${page}/export`, '/admin/tenants/import']) {
    assert.equal((await plainClient.get(url)).statusCode, 403, url)
  }
})
