// How the fastify-tenancy command fails, run for real (a child process of
// bin/fastify-tenancy.mjs): a code and whole sentences, JSON with --json,
// and the documented exit code for a database it cannot use.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { freePort } from '../server/demo/embedded-postgres.js'
import { serverUrl } from './helpers/database.js'
import { run } from './helpers/cli.js'
import { describeError } from '../server/cli/errors.js'

/** The server's URL with one part changed. */
function changed (change: (url: URL) => void): string {
  const url = new URL(serverUrl())
  change(url)
  return url.toString()
}

/** `CODE: Sentence. [Sentence.]` on one line, with no stack, no SQL and no half word at the start. */
function assertFailureLine (stderr: string, code: string): string {
  const match = /^(FST_TENANCY_[A-Z_]+): (.*)\n$/.exec(stderr)
  assert.ok(match !== null, `one line with the code: ${JSON.stringify(stderr)}`)
  assert.equal(match[1], code)
  const message = match[2] as string
  // A capital, or a command's name as the user types it (tenants:rls).
  assert.match(message, /^(?:[A-Z"-]|[a-z]+:[a-z-]+ ).{20,}[.?]$/, `whole sentences: ${message}`)
  assert.doesNotMatch(message, /\bselect\b|\n\s+at /i)
  return message
}

test('the command\'s connection failures (refused, unknown host, wrong password) exit 3 with a code of their own and a sentence that says what to check, as text and as JSON', async () => {
  const closed = await freePort()
  const cases: Array<[string, string, string, RegExp]> = [
    ['refused', `postgres://postgres:postgres@127.0.0.1:${closed}/central`, 'FST_TENANCY_CENTRAL_UNREACHABLE', new RegExp(`^Cannot reach the central database of database\\.url: the server at 127\\.0\\.0\\.1:${closed} refused the connection \\(start PostgreSQL there, or fix the port\\)\\.$`)],
    ['unknown host', 'postgres://postgres:postgres@no-such-host.invalid:5432/central', 'FST_TENANCY_CENTRAL_UNREACHABLE', /^Cannot reach the central database of database\.url: the host name "no-such-host\.invalid" does not resolve; check the host in database\.url\.$/],
    ['wrong password', changed((u) => { u.password = 'not-the-password' }), 'FST_TENANCY_CENTRAL_LOGIN_REFUSED', /^The central database refused the login of role "postgres" given in database\.url \(wrong password\): check the user name and password in database\.url\.$/]
  ]
  for (const [name, url, code, sentence] of cases) {
    const text = await run(['tenants:list'], { env: { DATABASE_URL: url } })
    assert.equal(text.code, 3, `${name}: ${text.stderr}`)
    assert.equal(text.stdout, '')
    assert.match(assertFailureLine(text.stderr, code), sentence, name)

    const json = await run(['tenants:list', '--json'], { env: { DATABASE_URL: url } })
    assert.equal(json.code, 3, name)
    assert.equal(json.stderr, '', `${name}: nothing but the JSON`)
    const failure = JSON.parse(json.stdout) as { code: string, message: string }
    assert.deepEqual(Object.keys(failure).sort(), ['code', 'message'])
    assert.equal(failure.code, code)
    assert.match(failure.message, sentence, `${name} (JSON)`)
  }
  // central:migrate and admin:create reach the database another way (no plugin): the same answer.
  const migrate = await run(['central:migrate'], { env: { DATABASE_URL: cases[0]?.[1] as string } })
  assert.equal(migrate.code, 3, migrate.stderr)
  assertFailureLine(migrate.stderr, 'FST_TENANCY_CENTRAL_UNREACHABLE')
})

test('usage and configuration mistakes carry their code: as text on stderr, as a JSON object on stdout with --json', async () => {
  const unknown = await run(['no:such-command'], { env: { DATABASE_URL: serverUrl() } })
  assert.equal(unknown.code, 2)
  assert.match(assertFailureLine(unknown.stderr, 'FST_TENANCY_CLI_USAGE'), /^Unknown command 'no:such-command'\. Run fastify-tenancy --help for usage\.$/)
  const missing = await run(['tenants:create', '--json'], { env: { DATABASE_URL: serverUrl() } })
  assert.equal(missing.code, 2)
  assert.equal(JSON.parse(missing.stdout).code, 'FST_TENANCY_CLI_USAGE')
  assert.match(JSON.parse(missing.stdout).message, /^Missing required argument 'identifier'\./)
  const noConfig = await run(['tenants:list', '--json'], { env: { DATABASE_URL: '' } })
  assert.equal(noConfig.code, 2)
  assert.equal(noConfig.stderr, '')
  assert.equal(JSON.parse(noConfig.stdout).code, 'FST_TENANCY_CLI_CONFIG')
  assert.match(JSON.parse(noConfig.stdout).message, /^Set DATABASE_URL to the URL of the central database/)
  const badFlag = await run(['tenants:migrate', '--concurrency=0'], { env: { DATABASE_URL: serverUrl() } })
  assert.equal(badFlag.code, 2)
  assert.match(assertFailureLine(badFlag.stderr, 'FST_TENANCY_CLI_USAGE'), /--concurrency must be a whole number of at least 1/)
  // A sentence that starts with a command's name keeps it as the user types it.
  const notShared = await run(['tenants:rls'], { env: { DATABASE_URL: serverUrl() } })
  assert.equal(notShared.code, 2)
  assert.match(assertFailureLine(notShared.stderr, 'FST_TENANCY_CLI_USAGE'), /^tenants:rls is for strategy "shared"/)
})

test('a database error keeps PostgreSQL\'s message, then its detail, without the SQL in front', () => {
  const failure = describeError(Object.assign(new Error('alter table "invoices" add constraint "u" unique ("total") - could not create unique index "u"'), {
    code: '23505', severity: 'ERROR', detail: 'Key (total)=(100) is duplicated.'
  }))
  assert.deepEqual(failure, { code: 'FST_TENANCY_CLI_FAILED', message: 'Could not create unique index "u". Key (total)=(100) is duplicated.', exitCode: 1 })
})

test('a missing table sends the reader to central:migrate only when it is one of the central tables', () => {
  const central = describeError(Object.assign(new Error('select "t0".* from "tenancy"."tenants" as "t0" - relation "tenancy.tenants" does not exist'), { code: '42P01', severity: 'ERROR' }))
  assert.deepEqual(central, { code: 'FST_TENANCY_CLI_FAILED', message: 'Relation "tenancy.tenants" does not exist. Is this the central database, and has it been migrated (fastify-tenancy central:migrate)?', exitCode: 1 })
  const tenantTable = describeError(Object.assign(new Error('relation "public.nopk" does not exist'), { code: '42P01', severity: 'ERROR' }))
  assert.deepEqual(tenantTable, { code: 'FST_TENANCY_CLI_FAILED', message: 'Relation "public.nopk" does not exist.', exitCode: 1 })
})

test('--version prints the package version and exits 0', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
  for (const flag of ['--version', '-V']) {
    const printed = await run([flag])
    assert.equal(printed.code, 0, printed.stderr)
    assert.equal(printed.stdout, `${version}\n`)
  }
})
