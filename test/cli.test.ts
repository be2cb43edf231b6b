// The fastify-tenancy command, run for real: a child process of
// bin/fastify-tenancy.mjs, never a function called in this process.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { freshCentral, serverUrl, sql, urlFor, type CentralDatabase } from './helpers/database.js'
import { BIN, ROOT, configFor, run, tenantLines, type Run } from './helpers/cli.js'
import { verifyPassword } from '../server/admin/auth/password.js'
import { centralMigrations } from '../migrations/central/index.js'

/** The command with a config file, and DATABASE_URL naming the same central database. */
function commandFor (central: CentralDatabase, config: string): (args: string[]) => Promise<Run> {
  return async (args) => await run(['--config', config, ...args], { env: { DATABASE_URL: central.url } })
}

const databaseOf = (central: CentralDatabase, key: string): string => `${central.prefix}${key.replaceAll('-', '')}`
const databaseExists = async (name: string): Promise<boolean> => (await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [name])).length === 1
const keyOf = async (central: CentralDatabase, identifier: string): Promise<string> =>
  (await sql(central.url, 'select key from tenancy.tenants where identifier = $1', [identifier]))[0]?.key as string
const noStack = (text: string): void => { assert.doesNotMatch(text, /\n\s+at /, 'no stack trace') }
/** One line on stderr: the FST_TENANCY_* code, then whole sentences (a capital first, a full stop at the end). */
const oneSentence = (text: string): void => { assert.match(text, /^FST_TENANCY_[A-Z_]+: [A-Z"-].*[.?]\n$/); noStack(text) }

// Each test has a central database and tenant prefix of its own: two run at once.
describe('the fastify-tenancy command', { concurrency: 2 }, () => {
  test('tenants:create, tenants:list and tenants:delete: JSON, the table, refusals and nothing left behind', async (t) => {
    const central = await freshCentral(t)
    const cli = commandFor(central, await configFor(central))
    const made = await cli(['tenants:create', 'acme', '--name', 'Acme', '--domain', 'acme.test', '--domain', 'shop.acme.test', '--json'])
    assert.equal(made.code, 0, made.stderr)
    const acme = JSON.parse(made.stdout)
    assert.equal(acme.identifier, 'acme')
    assert.equal(acme.status, 'active')
    assert.deepEqual(acme.domains, ['acme.test', 'shop.acme.test'])
    assert.equal(acme.database, databaseOf(central, acme.key))
    assert.ok(await databaseExists(acme.database))
    const globex = await cli(['tenants:create', 'globex'])
    assert.equal(globex.code, 0, globex.stderr)
    assert.match(globex.stdout, /^Created tenant globex \([0-9a-f-]{36}\), active, database t\w+ on host default\.\n$/)

    const listed = await cli(['tenants:list', '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>
    assert.deepEqual(rows.map((r) => [r.identifier, r.name, r.status, r.host, r.domains]), [
      ['acme', 'Acme', 'active', 'default', ['acme.test', 'shop.acme.test']],
      ['globex', 'globex', 'active', 'default', []]
    ])
    assert.ok(rows.every((r) => !Number.isNaN(Date.parse(String(r.created)))))
    const table = await cli(['tenants:list'])
    assert.equal(table.code, 0)
    assert.match(table.stdout, /^identifier\s+name\s+status\s+host\s+domains\s+created\n-+/)
    assert.match(table.stdout, /\nacme\s+Acme\s+active\s+default\s+acme\.test, shop\.acme\.test\s+\d{4}-\d\d-\d\d \d\d:\d\d\n/)

    const dup = await cli(['tenants:create', 'acme'])
    assert.equal(dup.code, 1)
    assert.match(dup.stderr, /The identifier "acme" is taken/)
    oneSentence(dup.stderr)
    const bad = await cli(['tenants:create', 'Bad_Name'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not valid/)
    noStack(bad.stderr)

    // Not a terminal and no --force: refused, nothing dropped.
    const refused = await cli(['tenants:delete', 'acme'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /pass --force/)
    oneSentence(refused.stderr)
    assert.ok(await databaseExists(acme.database))
    const unknown = await cli(['tenants:delete', 'acme', 'nobody', '--force'])
    assert.equal(unknown.code, 1)
    assert.equal(unknown.stderr, 'FST_TENANCY_TENANT_NOT_FOUND: No tenant has the identifier or key "nobody".\n')
    assert.ok(await databaseExists(acme.database), 'an unknown name stops the whole delete before anything is dropped')

    const deleted = await cli(['tenants:delete', acme.key, '--force'])
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.match(deleted.stdout, /Deleted tenant acme/)
    assert.equal(await databaseExists(acme.database), false)
    assert.deepEqual(await sql(central.url, 'select identifier from tenancy.tenants'), [{ identifier: 'globex' }])
    assert.deepEqual(await sql(central.url, 'select domain from tenancy.domains'), [])
  })

  test('migrate and rollback: --tenants and --skip-tenants filter, --concurrency is checked, unknown tenants and failed ones exit 1', async (t) => {
    const central = await freshCentral(t)
    const cli = commandFor(central, await configFor(central))
    for (const id of ['a1', 'a2', 'a3']) assert.equal((await cli(['tenants:create', id])).code, 0)
    const migrated = (r: Run): Array<[string, boolean, number]> => tenantLines(r.stdout).map((x) => [x.identifier, x.ok, x.migrations.length])

    const back = await cli(['tenants:rollback', '--tenants=a1,a2', '--json'])
    assert.equal(back.code, 0, back.stderr)
    assert.deepEqual(migrated(back), [['a1', true, 1], ['a2', true, 1]])
    const a3key = await keyOf(central, 'a3')
    const skipped = await cli(['tenants:rollback', `--skip-tenants=a1,${a3key}`, '--json'])
    // a2 has nothing left to roll back (the test app has one migration): it is chosen, and nothing runs.
    assert.deepEqual(migrated(skipped), [['a2', true, 0]], 'a key is as good as an identifier')
    const forward = await cli(['tenants:migrate', '--skip-tenants', 'a2', '--concurrency=2', '--json'])
    assert.equal(forward.code, 0, forward.stderr)
    assert.deepEqual(migrated(forward), [['a1', true, 1], ['a3', true, 0]])
    const plain = await cli(['tenants:migrate', '--concurrency', '1'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.match(plain.stdout, /^ok\s+a2 \(Migration20261122000001_tenant\)$/m)
    assert.match(plain.stdout, /^ok\s+a1$/m)
    assert.match(plain.stdout, /Migrate: 3 of 3 tenants succeeded\.\n$/)

    const unknown = await cli(['tenants:migrate', '--tenants=a1,nobody'])
    assert.equal(unknown.code, 1)
    assert.equal(unknown.stderr, 'FST_TENANCY_TENANT_NOT_FOUND: No tenant has the identifier or key "nobody".\n')
    assert.equal(unknown.stdout, '')
    const verbose = await cli(['tenants:rollback', '--skip-tenants=nobody', '--verbose'])
    assert.equal(verbose.code, 1)
    assert.match(verbose.stderr, /^FST_TENANCY_TENANT_NOT_FOUND: No tenant has the identifier or key "nobody"\.\n.*\n\s+at /, '--verbose adds the stack')

    const values = ['0', '-1', '1.5', 'two', '']
    for (const [i, r] of (await Promise.all(values.map(async (v) => await cli(['tenants:migrate', `--concurrency=${v}`])))).entries()) {
      assert.equal(r.code, 2, `--concurrency=${values[i] ?? ''}`)
      assert.match(r.stderr, /--concurrency must be a whole number of at least 1/)
      oneSentence(r.stderr)
    }
    const noSeeder = await cli(['tenants:seed'])
    assert.equal(noSeeder.code, 2, 'seeding without provisioning.seeder is a configuration mistake')
    assert.equal(noSeeder.stderr, 'FST_TENANCY_MISCONFIGURED: There is no seeder: set provisioning.seeder in the plugin options.\n')
    const empty = await cli(['tenants:migrate', '--tenants='])
    assert.equal(empty.code, 2, 'an empty --tenants does not mean every tenant')
    assert.equal((await cli(['no:such-command'])).code, 2)
    assert.equal((await cli(['tenants:create'])).code, 2, 'a missing argument')
    const noConfig = await run(['tenants:list'], { env: { DATABASE_URL: '' } })
    assert.equal(noConfig.code, 2)
    assert.match(noConfig.stderr, /^FST_TENANCY_CLI_CONFIG: Set DATABASE_URL to the URL of the central database, or give --config <file>/)
    oneSentence(noConfig.stderr)

    // a2's database is gone: the others migrate, the exit code says one failed, and it is listed with the reason.
    // a2 is behind (the central record says so), so the migrate connects to it: an up-to-date tenant is skipped without connecting.
    assert.equal((await cli(['tenants:rollback', '--tenants=a1,a2'])).code, 0)
    await sql(serverUrl(), `drop database "${databaseOf(central, await keyOf(central, 'a2'))}" with (force)`)
    const broken = await cli(['tenants:migrate', '--json'])
    assert.equal(broken.code, 1)
    assert.deepEqual(migrated(broken), [['a1', true, 1], ['a2', false, 0], ['a3', true, 0]])
    assert.match(broken.stderr, /^1 tenant failed:\n\s+a2 \([0-9a-f-]{36}\): .*does not exist/)
    const brokenPlain = await cli(['tenants:migrate'])
    assert.equal(brokenPlain.code, 1)
    assert.match(brokenPlain.stdout, /^FAILED\s+a2: .*does not exist/m)
    assert.match(brokenPlain.stdout, /Migrate: 2 of 3 tenants succeeded\./)
  })

  test('tenants:run and tenants:seed work in each tenant\'s context; a failing tenant is listed and the others are done', async (t) => {
    const central = await freshCentral(t)
    const seeder = ', provisioning: { spares: 0, seeder: async (scope) => { await scope.em.getConnection().execute("insert into projects (title) values (\'seeded\')") } }'
    const cli = commandFor(central, await configFor(central, seeder))
    for (const id of ['r1', 'r2', 'r3']) assert.equal((await cli(['tenants:create', id])).code, 0)
    const titles = async (id: string): Promise<string[]> =>
      (await sql(urlFor(databaseOf(central, await keyOf(central, id))), 'select title from projects order by id')).map((r) => r.title as string)

    const seeded = await cli(['tenants:seed', '--tenants=r1', '--json'])
    assert.equal(seeded.code, 0, seeded.stderr)
    assert.deepEqual(await titles('r1'), ['seeded', 'seeded'])
    assert.deepEqual(await titles('r2'), ['seeded'])

    const dir = await mkdtemp(join(tmpdir(), 'ft-run-'))
    const task = join(dir, 'task.mjs')
    await writeFile(task, "export default async function (scope) { await scope.em.getConnection().execute(\"insert into projects (title) values ('from ' || ?)\", [scope.tenant.identifier]) }\n")
    const ran = await cli(['tenants:run', task, '--skip-tenants=r3', '--json'])
    assert.equal(ran.code, 0, ran.stderr)
    assert.deepEqual(JSON.parse(ran.stdout).map((r: { identifier: string, ok: boolean }) => [r.identifier, r.ok]), [['r1', true], ['r2', true]])
    assert.deepEqual(await titles('r1'), ['seeded', 'seeded', 'from r1'])
    assert.deepEqual(await titles('r2'), ['seeded', 'from r2'])
    assert.deepEqual(await titles('r3'), ['seeded'])

    const failing = join(dir, 'failing.ts')
    await writeFile(failing, "export default async function (scope: { tenant: { identifier: string } }): Promise<void> { if (scope.tenant.identifier === 'r2') throw new Error('r2 is not ready') }\n")
    const partly = await cli(['tenants:run', failing])
    assert.equal(partly.code, 1)
    assert.match(partly.stdout, /Run: 2 of 3 tenants succeeded\./)
    assert.match(partly.stderr, /^1 tenant failed:\n\s+r2 \([0-9a-f-]{36}\): r2 is not ready\n$/)

    const missing = await cli(['tenants:run', join(dir, 'nope.mjs')])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /^FST_TENANCY_FILE_NOT_FOUND: The module .*nope\.mjs does not exist\.\n$/)
    await writeFile(join(dir, 'nodefault.mjs'), 'export const x = 1\n')
    const noDefault = await cli(['tenants:run', join(dir, 'nodefault.mjs')])
    assert.equal(noDefault.code, 2)
    assert.match(noDefault.stderr, /must export a function as its default export/)
  })

  test('central:migrate makes the central tables on an empty database; admin:create makes an owner once', async (t) => {
    const central = await freshCentral(t)
    const name = `${central.name}_empty`
    await sql(serverUrl(), `create database "${name}"`)
    t.after(async () => { await sql(serverUrl(), `drop database if exists "${name}" with (force)`) })
    const emptyUrl = urlFor(name)
    const listEarly = await run(['tenants:list'], { env: { DATABASE_URL: emptyUrl } })
    assert.equal(listEarly.code, 1)
    assert.match(listEarly.stderr, /^FST_TENANCY_CENTRAL_NOT_MIGRATED: The central database has no fastify-tenancy tables in schema "tenancy": run `fastify-tenancy central:migrate`/, 'no SQL in the sentence')
    const migrated = await run(['central:migrate'], { env: { DATABASE_URL: emptyUrl } })
    assert.equal(migrated.code, 0, migrated.stderr)
    assert.match(migrated.stdout, new RegExp(`^Ran ${centralMigrations.length} central migrations: Migration20261122000001_central, `))
    assert.equal((await sql(emptyUrl, "select count(*)::int as n from information_schema.tables where table_schema = 'tenancy' and table_name in ('tenants', 'domains', 'tenant_clusters', 'users', 'tenant_users', 'admins', 'admin_roles', 'admin_role_assignments')"))[0]?.n, 8)
    const again = await run(['central:migrate', '--json'], { env: { DATABASE_URL: emptyUrl } })
    assert.deepEqual(JSON.parse(again.stdout), { migrations: [] })

    const cli = commandFor(central, await configFor(central))
    const admin = await cli(['admin:create', '--email', 'Ops@Example.test', '--name', 'Ops'])
    assert.equal(admin.code, 0, admin.stderr)
    const password = /Password \(shown only this once\): (\S{20})\n$/.exec(admin.stdout)?.[1]
    assert.ok(password !== undefined, admin.stdout)
    const [row] = await sql(central.url, "select a.name, a.password_hash, array_agg(r.name) as roles from tenancy.admins a join tenancy.admin_role_assignments ra on ra.admin_id = a.id join tenancy.admin_roles r on r.id = ra.role_id where a.email = 'ops@example.test' group by a.id")
    assert.equal(row?.name, 'Ops')
    assert.deepEqual(row?.roles, ['owner'])
    assert.match(row?.password_hash, /^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/)
    assert.ok(await verifyPassword(password, row?.password_hash))

    const dup = await cli(['admin:create', '--email', 'ops@example.test', '--name', 'Other', '--password', 'long enough password'])
    assert.equal(dup.code, 1)
    assert.equal(dup.stderr, 'FST_TENANCY_ADMIN_EXISTS: An admin with the email ops@example.test exists already; nothing was created.\n')
    const given = await cli(['admin:create', '--email', 'dev@example.test', '--name', 'Dev', '--password', 'correct horse battery', '--json'])
    assert.equal(given.code, 0, given.stderr)
    assert.equal(JSON.parse(given.stdout).password, undefined, 'a given password is not printed')
    const [dev] = await sql(central.url, "select password_hash from tenancy.admins where email = 'dev@example.test'")
    assert.ok(await verifyPassword('correct horse battery', dev?.password_hash))
    assert.equal((await cli(['admin:create', '--email', 'not-an-email', '--name', 'X'])).code, 2)
    assert.equal((await cli(['admin:create', '--email', 'x@example.test', '--name', 'X', '--password', 'short'])).code, 2)
    assert.equal((await cli(['admin:create', '--email', 'x@example.test'])).code, 2, '--name is required')
    assert.equal((await sql(central.url, 'select count(*)::int as n from tenancy.admins'))[0]?.n, 2)
  })

  test('configuration: tenancy.config.* in the working folder, a function export, DATABASE_URL alone, and options the plugin refuses', async (t) => {
    const central = await freshCentral(t)
    const dir = await mkdtemp(join(tmpdir(), 'ft-cwd-'))
    await writeFile(join(dir, 'tenancy.config.ts'), `import type { TenancyOptions } from ${JSON.stringify(join(ROOT, 'server', 'index.js'))}\nexport default async (): Promise<TenancyOptions> => ({ database: { url: ${JSON.stringify(central.url)}, prefix: ${JSON.stringify(central.prefix)} }, provisioning: { spares: 0 } })\n`)
    const made = await run(['tenants:create', 'cwd-tenant', '--json'], { cwd: dir, env: { DATABASE_URL: '' } })
    assert.equal(made.code, 0, made.stderr)
    assert.equal(JSON.parse(made.stdout).database, databaseOf(central, JSON.parse(made.stdout).key), 'the config in the working folder gave the prefix')

    // No config file in the repository root: DATABASE_URL alone names the central database.
    assert.equal(['tenancy.config.ts', 'tenancy.config.mjs', 'tenancy.config.js'].some((f) => existsSync(join(ROOT, f))), false)
    const fromEnv = await run(['tenants:list', '--json'], { env: { DATABASE_URL: central.url } })
    assert.equal(fromEnv.code, 0, fromEnv.stderr)
    assert.deepEqual(JSON.parse(fromEnv.stdout).map((r: { identifier: string }) => r.identifier), ['cwd-tenant'])

    const refused = await run(['--config', await configFor(central, ', cache: "sometimes"'), 'tenants:list'])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /^FST_TENANCY_CLI_CONFIG: The tenancy options are not usable: Option "cache"/)
    noStack(refused.stderr)
    const broken = join(dir, 'broken.mjs')
    await writeFile(broken, 'export default {\n')
    const unloadable = await run(['--config', broken, 'tenants:list'])
    assert.equal(unloadable.code, 2)
    assert.match(unloadable.stderr, /^FST_TENANCY_FILE_NOT_LOADABLE: Cannot load the config file .*broken\.mjs/)
    const missing = await run(['--config', join(dir, 'missing.mjs'), 'tenants:list'])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /^FST_TENANCY_FILE_NOT_FOUND: The config file .*missing\.mjs does not exist\.\n$/)
    const unreachable = await run(['tenants:list'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' } })
    assert.equal(unreachable.code, 3)
    assert.match(unreachable.stderr, /^FST_TENANCY_CENTRAL_UNREACHABLE: Cannot reach the central database of database\.url: the server at 127\.0\.0\.1:1 refused the connection/)
    oneSentence(unreachable.stderr)
  })

  // util-linux `script` runs the command on a pseudo-terminal: the progress bar and the typed confirmation.
  const SCRIPT = '/usr/bin/script'
  test('on a terminal: a progress bar, and tenants:delete asks to type the identifier', { skip: !existsSync(SCRIPT) || process.platform !== 'linux' ? 'needs util-linux script' : false }, async (t) => {
    const central = await freshCentral(t)
    const config = await configFor(central)
    const cli = commandFor(central, config)
    for (const id of ['p1', 'p2']) assert.equal((await cli(['tenants:create', id])).code, 0)
    const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
    const onTerminal = async (args: string[], input: string): Promise<Run> => {
      const line = [process.execPath, BIN, '--config', config, ...args].map(quote).join(' ')
      // script passes its stdin to the terminal, and gives back the command's exit code (-e).
      return await run(['-qec', line, '/dev/null'], { command: [SCRIPT], input, env: { DATABASE_URL: central.url } })
    }
    const bar = await onTerminal(['tenants:migrate'], '')
    assert.equal(bar.code, 0, bar.stdout)
    assert.match(bar.stdout, /Migrate \[[\u2588\u2591]+\] 2\/2 tenants \| 0 failed/)
    assert.match(bar.stdout, /Migrate: 2 of 2 tenants succeeded\./)

    const wrong = await onTerminal(['tenants:delete', 'p1'], 'p2\n')
    assert.equal(wrong.code, 1)
    assert.match(wrong.stdout, /Type its identifier to confirm/)
    assert.match(wrong.stdout, /Not confirmed: nothing was deleted\./)
    assert.ok(await databaseExists(databaseOf(central, await keyOf(central, 'p1'))))
    const key = await keyOf(central, 'p1')
    const right = await onTerminal(['tenants:delete', 'p1'], 'p1\n')
    assert.equal(right.code, 0, right.stdout)
    assert.match(right.stdout, /Deleted tenant p1/)
    assert.equal(await databaseExists(databaseOf(central, key)), false)
    assert.deepEqual(await sql(central.url, 'select identifier from tenancy.tenants'), [{ identifier: 'p2' }])
  })
})
