// tenants:update, tenants:suspend / activate and domains:*, run for real as child processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { freshCentral, sql } from './helpers/database.js'
import { configFor, run, type Run } from './helpers/cli.js'

test('the CLI renames, suspends, activates and changes domains through the core, and refuses bad input with one sentence', async (t) => {
  const central = await freshCentral(t)
  const config = await configFor(central)
  const cli = async (...args: string[]): Promise<Run> => await run(['--config', config, ...args])
  const refused = (r: Run, code: number, message: RegExp): void => {
    assert.equal(r.code, code, r.stderr)
    assert.match(r.stderr, message)
    assert.match(r.stderr, /^FST_TENANCY_[A-Z_]+: [A-Z"].*[.?]\n$/, 'the code, then one sentence')
  }

  assert.equal((await cli('tenants:create', 'acme', '--name', 'Acme')).code, 0)
  refused(await cli('tenants:update', 'acme', '--identifier', 'admin', '--name', 'Renamed'), 1, /The identifier "admin" is taken/)
  refused(await cli('tenants:update', 'acme'), 2, /Give at least one of --identifier, --name or --cluster/)
  assert.deepEqual(await sql(central.url, 'select identifier, name from tenancy.tenants'), [{ identifier: 'acme', name: 'Acme' }])
  const renamed = await cli('tenants:update', 'acme', '--identifier', 'acme-corp', '--name', 'Acme Corp', '--json')
  assert.equal(renamed.code, 0, renamed.stderr)
  assert.deepEqual([JSON.parse(renamed.stdout).identifier, JSON.parse(renamed.stdout).name], ['acme-corp', 'Acme Corp'])

  const added = await cli('domains:add', 'acme-corp', 'acme.example.com')
  assert.match(added.stdout, /Added acme.example.com to tenant acme-corp as its primary domain\./)
  refused(await cli('domains:add', 'acme-corp', 'ACME.example.com'), 1, /not valid/)
  const primary = await cli('domains:add', 'acme-corp', 'shop.example.com', '--primary', '--json')
  assert.deepEqual(JSON.parse(primary.stdout).map((d: { domain: string, primary: boolean }) => [d.domain, d.primary]), [['shop.example.com', true], ['acme.example.com', false]])
  assert.equal((await cli('domains:remove', 'acme-corp', 'shop.example.com')).code, 0)
  assert.deepEqual(await sql(central.url, 'select domain, is_primary from tenancy.domains'), [{ domain: 'acme.example.com', is_primary: true }])

  assert.equal((await cli('tenants:suspend', 'acme-corp')).code, 0)
  refused(await cli('tenants:suspend', 'acme-corp'), 1, /is suspended, so it cannot be suspended/)
  assert.equal((await cli('tenants:activate', 'acme-corp')).code, 0)
  assert.deepEqual(await sql(central.url, 'select status from tenancy.tenants'), [{ status: 'active' }])
})
