import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { freshCentral, serverUrl, sql, urlFor, type CentralDatabase } from './helpers/database.js'

const BIN = join(process.cwd(), 'bin', 'fastify-tenancy.mjs')

interface Run { code: number, stdout: string, stderr: string }

/** Runs the real command as a child process, not a TTY. */
async function cli (args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += String(d) })
    child.stderr.on('data', (d) => { stderr += String(d) })
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }))
  })
}

/** A config file giving the central database and this test's tenant database prefix. */
async function configFor (central: CentralDatabase, extra = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ft-cli-'))
  const file = join(dir, 'tenancy.config.mjs')
  await writeFile(file, `export default { database: { url: ${JSON.stringify(central.url)}, prefix: ${JSON.stringify(central.prefix)} }, provisioning: { spares: 0 }${extra} }\n`)
  return file
}

test('tenants:create, tenants:list --json and tenants:delete --force work end to end with exit codes', async (t) => {
  const central = await freshCentral(t)
  const config = await configFor(central)
  const made = await cli(['--config', config, 'tenants:create', 'acme', '--name', 'Acme', '--domain', 'acme.test', '--json'])
  assert.equal(made.code, 0, made.stderr)
  const acme = JSON.parse(made.stdout)
  assert.equal(acme.status, 'active')
  assert.equal((await cli(['--config', config, 'tenants:create', 'globex'])).code, 0)
  const listed = await cli(['--config', config, 'tenants:list', '--json'])
  assert.equal(listed.code, 0)
  assert.deepEqual(JSON.parse(listed.stdout).map((r: { identifier: string, domains: string }) => [r.identifier, r.domains]), [['acme', 'acme.test'], ['globex', '']])
  const table = await cli(['--config', config, 'tenants:list'])
  assert.match(table.stdout, /identifier\s+name\s+status/)
  assert.match(table.stdout, /acme\s+Acme\s+active/)

  const dup = await cli(['--config', config, 'tenants:create', 'acme'])
  assert.equal(dup.code, 1)
  assert.match(dup.stderr, /The identifier "acme" is taken/)
  assert.doesNotMatch(dup.stderr, /\n\s+at /, 'no stack trace')
  const bad = await cli(['--config', config, 'tenants:create', 'Bad Name'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /not valid/)

  const refused = await cli(['--config', config, 'tenants:delete', 'acme'])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /pass --force/)
  const dbName = `${central.prefix}${String(acme.key).replaceAll('-', '')}`
  assert.equal((await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [dbName])).length, 1)
  const deleted = await cli(['--config', config, 'tenants:delete', 'acme', '--force'])
  assert.equal(deleted.code, 0, deleted.stderr)
  assert.deepEqual(await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [dbName]), [])
  assert.deepEqual(await sql(central.url, 'select identifier from tenants'), [{ identifier: 'globex' }])
})

test('migrate and rollback take --tenants, --skip-tenants and --concurrency; unknown tenants and bad numbers fail with a sentence', async (t) => {
  const central = await freshCentral(t)
  const config = await configFor(central)
  for (const id of ['a1', 'a2', 'a3']) assert.equal((await cli(['--config', config, 'tenants:create', id])).code, 0)
  const back = await cli(['--config', config, 'tenants:rollback', '--tenants=a1,a2', '--json'])
  assert.equal(back.code, 0, back.stderr)
  assert.deepEqual(JSON.parse(back.stdout).map((r: { identifier: string, migrations: string[] }) => [r.identifier, r.migrations.length]), [['a1', 1], ['a2', 1]])
  const forward = await cli(['--config', config, 'tenants:migrate', '--skip-tenants=a2', '--concurrency=2', '--json'])
  assert.equal(forward.code, 0)
  assert.deepEqual(JSON.parse(forward.stdout).map((r: { identifier: string, migrations: string[] }) => [r.identifier, r.migrations.length]), [['a1', 1], ['a3', 0]])
  const plain = await cli(['--config', config, 'tenants:migrate'])
  assert.equal(plain.code, 0)
  assert.match(plain.stdout, /ok\s+a2 \(Migration20261122000002_sync\)/)
  assert.match(plain.stdout, /Migrate: 3 of 3 tenants succeeded/)

  const unknown = await cli(['--config', config, 'tenants:migrate', '--tenants=nobody'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /No tenant has the identifier or key "nobody"/)
  assert.equal((await cli(['--config', config, 'tenants:migrate', '--concurrency=zero'])).code, 2)
  assert.equal((await cli(['--config', config, 'no:such-command'])).code, 2)
  const noConfig = await cli(['tenants:list'], { DATABASE_URL: '' })
  assert.equal(noConfig.code, 2)
  assert.match(noConfig.stderr, /Set DATABASE_URL/)

  // One tenant's database is gone: the others migrate, and the exit code says it failed.
  const a2 = (await sql(central.url, "select key from tenants where identifier = 'a2'"))[0]?.key as string
  await sql(serverUrl(), `drop database "${central.prefix}${a2.replaceAll('-', '')}" with (force)`)
  const broken = await cli(['--config', config, 'tenants:migrate'])
  assert.equal(broken.code, 1)
  assert.match(broken.stdout, /Migrate: 2 of 3 tenants succeeded/)
  assert.match(broken.stderr, /Failed tenants:\n\s+a2: .*does not exist/)
})

test('tenants:run runs a module in each tenant, central:migrate makes the tables, admin:create makes an owner once', async (t) => {
  const central = await freshCentral(t)
  const config = await configFor(central)
  for (const id of ['r1', 'r2']) assert.equal((await cli(['--config', config, 'tenants:create', id])).code, 0)
  const dir = await mkdtemp(join(tmpdir(), 'ft-run-'))
  const module = join(dir, 'task.mjs')
  await writeFile(module, "export default async function (scope) { await scope.em.getConnection().execute(\"insert into projects (title) values ('from ' || ?)\", [scope.tenant.identifier]) }\n")
  const ran = await cli(['--config', config, 'tenants:run', module, '--json'])
  assert.equal(ran.code, 0, ran.stderr)
  for (const id of ['r1', 'r2']) {
    const key = (await sql(central.url, 'select key from tenants where identifier = $1', [id]))[0]?.key as string
    assert.deepEqual(await sql(urlFor(`${central.prefix}${key.replaceAll('-', '')}`), 'select title from projects'), [{ title: `from ${id}` }])
  }
  const missing = await cli(['--config', config, 'tenants:run', join(dir, 'nope.mjs')])
  assert.equal(missing.code, 2)

  await sql(serverUrl(), `create database "${central.name}_empty"`)
  t.after(async () => { await sql(serverUrl(), `drop database if exists "${central.name}_empty" with (force)`) })
  const emptyUrl = urlFor(`${central.name}_empty`)
  const migrated = await cli(['central:migrate'], { DATABASE_URL: emptyUrl })
  assert.equal(migrated.code, 0, migrated.stderr)
  assert.match(migrated.stdout, /Ran 4 central migration\(s\)/)
  assert.equal((await sql(emptyUrl, "select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name in ('tenants', 'domains', 'tenant_clusters', 'users', 'tenant_users', 'admins')"))[0]?.n, 6)
  assert.match((await cli(['central:migrate'], { DATABASE_URL: emptyUrl })).stdout, /up to date/)

  const admin = await cli(['--config', config, 'admin:create', '--email', 'Ops@Example.test', '--name', 'Ops'])
  assert.equal(admin.code, 0, admin.stderr)
  assert.match(admin.stdout, /Created admin ops@example.test with the owner role. Password: \S{20}/)
  const again = await cli(['--config', config, 'admin:create', '--email', 'ops@example.test'])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /exists already/)
  assert.equal((await cli(['--config', config, 'admin:create', '--email', 'not-an-email'])).code, 2)
  const roles = await sql(central.url, "select r.name from admins a join admin_role_assignments ra on ra.admin_id = a.id join admin_roles r on r.id = ra.role_id where a.email = 'ops@example.test'")
  assert.deepEqual(roles, [{ name: 'owner' }])
})
