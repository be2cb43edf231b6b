import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { sql, urlFor } from './helpers/database.js'
import { configFor, run } from './helpers/cli.js'

const FUTURE = 'Migration20300101000000_future'

for (const strategy of ['database', 'schema'] as const) {
  test(`${strategy}: tenants:status --verify reports a tenant whose schema was changed by hand, not an untouched one, and lists unknown migrations`, async (t) => {
    const { app, central } = await buildApp(t, { strategy, provisioning: { spares: 0 } })
    const acme = await app.tenancy.create({ identifier: 'acme' })
    await app.tenancy.create({ identifier: 'globex' })
    const name = `${central.prefix}${acme.key.replaceAll('-', '')}`
    // By hand, past the migrations: a column, and a migration row this deploy does not have (a newer deploy's).
    const [url, table] = strategy === 'database' ? [urlFor(name), 'projects'] : [central.url, `"${name}".projects`]
    const migrations = strategy === 'database' ? 'fastify_tenancy_migrations' : `"${name}".fastify_tenancy_migrations`
    await sql(url, `alter table ${table} add column hacked integer default 7`)
    await sql(url, `insert into ${migrations} (name, executed_at) values ($1, now())`, [FUTURE])
    const config = await configFor(central, `, strategy: '${strategy}'`)

    // From the central record, without connecting: both up to date, nothing unknown seen yet.
    const recorded = await run(['tenants:status', '--json', '--config', config])
    assert.equal(recorded.code, 0, recorded.stderr)
    const before = JSON.parse(recorded.stdout) as Array<{ identifier: string, pending: string[], unknown: string[], recorded: boolean }>
    assert.deepEqual(before.map((r) => [r.identifier, r.recorded, r.pending.length]).sort(), [['acme', true, 0], ['globex', true, 0]])

    const verified = await run(['tenants:status', '--verify', '--json', '--config', config])
    assert.equal(verified.code, 1, 'a schema changed by hand fails the command')
    assert.match(verified.stderr, /1 tenant schema\(s\) differ from the template's.*acme/)
    const rows = JSON.parse(verified.stdout) as Array<{ identifier: string, verdict: string, unknown: string[], differences: string[] }>
    const byName = new Map(rows.map((r) => [r.identifier, r]))
    assert.equal(byName.get('acme')?.verdict, 'changed')
    assert.ok(byName.get('acme')?.differences.some((d) => d.startsWith('+ column projects.hacked integer')), JSON.stringify(byName.get('acme')?.differences))
    assert.equal(byName.get('globex')?.verdict, 'matches')
    assert.deepEqual(byName.get('acme')?.unknown, [FUTURE])
    assert.deepEqual(byName.get('globex')?.unknown, [])

    // The reading was recorded: the unknown migration is now listed from the central record too.
    const again = await run(['tenants:status', '--json', '--config', config])
    const after = new Map((JSON.parse(again.stdout) as Array<{ identifier: string, unknown: string[] }>).map((r) => [r.identifier, r.unknown]))
    assert.deepEqual(after.get('acme'), [FUTURE])
    const fleet = await app.tenancy.migrationStates([acme.key])
    assert.deepEqual(fleet.get(acme.key)?.unknown, [FUTURE])

    // Put back by hand, it matches again.
    await sql(url, `alter table ${table} drop column hacked`)
    assert.equal((await app.tenancy.verifySchema(acme)).verdict, 'matches')
  })
}

test('shared: tenants:status says there is one set of tables, and verifySchema refuses with a sentence', async (t) => {
  const { app } = await buildApp(t, { strategy: 'shared' })
  const acme = await app.tenancy.create({ identifier: 'acme' })
  await assert.rejects(app.tenancy.verifySchema(acme), /one set of tables for every tenant/)
})
