import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import Fastify from 'fastify'
import { tenancyPlugin, type TenancyOptions } from '../server/index.js'
import { serverUrl, sql, urlFor, dropDatabases } from './helpers/database.js'
import { run } from './helpers/cli.js'

/** Registers the plugin on `url`; resolves with the error register fails with (or null). */
async function registerOn (url: string, extra: Partial<TenancyOptions> = {}): Promise<(Error & { code?: string }) | null> {
  const app = Fastify()
  try {
    await app.register(tenancyPlugin, { database: { url, prefix: `t${randomBytes(4).toString('hex')}_` }, migrateCentral: true, cache: { listen: false }, ...extra })
    await app.ready()
    return null
  } catch (error) {
    return error as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => { resolve(port) })
    })
  })
}

function withCredentials (url: string, user: string, password: string, database: string): string {
  const u = new URL(url)
  u.username = user
  u.password = password
  u.pathname = '/' + database
  return u.toString()
}

test('a central database that does not exist is made when the role may create databases', async (t) => {
  const name = `ft_missing_${randomBytes(4).toString('hex')}`
  t.after(async () => { await dropDatabases(serverUrl(), name, `${name}_none_`) })
  assert.equal(await registerOn(urlFor(name)), null)
  assert.equal((await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [name])).length, 1)
  assert.equal((await sql(urlFor(name), 'select count(*)::int as n from tenancy.tenants'))[0]?.n, 0, 'and migrated')
})

test('each connection failure at register is an FST_TENANCY_* error with a sentence naming database.url, never a driver\'s stack', async (t) => {
  const password = 'not-the-password'
  const port = await closedPort()
  const refused = await registerOn(`postgres://postgres:postgres@127.0.0.1:${port}/central`)
  assert.equal(refused?.code, 'FST_TENANCY_CENTRAL_UNREACHABLE')
  assert.match(String(refused?.message), new RegExp(`^Cannot reach the central database of database\\.url: the server at 127\\.0\\.0\\.1:${port} refused the connection \\(start PostgreSQL there, or fix the port\\)\\.$`))

  const unknown = await registerOn('postgres://postgres:postgres@no-such-host.invalid:5432/central')
  assert.equal(unknown?.code, 'FST_TENANCY_CENTRAL_UNREACHABLE')
  assert.match(String(unknown?.message), /the host name "no-such-host\.invalid" does not resolve; check the host in database\.url/)

  const wrong = await registerOn(withCredentials(serverUrl(), 'postgres', password, 'postgres'))
  assert.equal(wrong?.code, 'FST_TENANCY_CENTRAL_LOGIN_REFUSED')
  assert.match(String(wrong?.message), /refused the login of role "postgres" given in database\.url \(wrong password\): check the user name and password in database\.url/)
  assert.doesNotMatch(String(wrong?.message), new RegExp(password), 'the password is never in the message')

  // A role that may not create databases, pointed at one that does not exist.
  const role = `ft_nocreate_${randomBytes(3).toString('hex')}`
  await sql(serverUrl(), `create role ${role} login nocreatedb password 'role-password'`)
  t.after(async () => { await sql(serverUrl(), `drop role if exists ${role}`) })
  const missing = `ft_absent_${randomBytes(4).toString('hex')}`
  const absent = await registerOn(withCredentials(serverUrl(), role, 'role-password', missing))
  assert.equal(absent?.code, 'FST_TENANCY_CENTRAL_DATABASE_MISSING')
  assert.match(String(absent?.message), new RegExp(`The central database "${missing}" named in database\\.url does not exist, and role "${role}" may not create databases: create it \\(createdb ${missing}\\)`))
  assert.equal((await sql(serverUrl(), 'select 1 from pg_database where datname = $1', [missing])).length, 0)

  for (const error of [refused, unknown, wrong, absent]) assert.doesNotMatch(String(error?.stack ?? ''), /node_modules\/pg/, 'the stack is ours, not the driver\'s')

  // The command says the same sentence, and exits 3 (a database it cannot use).
  const cli = await run(['tenants:list'], { env: { DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${port}/central` } })
  assert.equal(cli.code, 3)
  assert.match(cli.stderr, /Cannot reach the central database of database\.url: the server at 127\.0\.0\.1:\d+ refused the connection/)
  assert.doesNotMatch(cli.stderr, /at .*node_modules/)
})

test('a role that may not create the central schema gets FST_TENANCY_CENTRAL_SCHEMA; the schema made for it is enough', async (t) => {
  const name = `ft_noschema_${randomBytes(4).toString('hex')}`
  const role = `ft_plain_${randomBytes(3).toString('hex')}`
  await sql(serverUrl(), `create database ${name}`)
  await sql(serverUrl(), `create role ${role} login nocreatedb password 'role-password'`)
  t.after(async () => {
    await dropDatabases(serverUrl(), name, `${name}_none_`)
    await sql(serverUrl(), `drop role if exists ${role}`)
  })
  // PostgreSQL 15+: a plain role may not create in public nor make schemas.
  await sql(urlFor(name), `revoke create on database ${name} from public`)
  const url = withCredentials(serverUrl(), role, 'role-password', name)
  const refused = await registerOn(url)
  assert.equal(refused?.code, 'FST_TENANCY_CENTRAL_SCHEMA')
  assert.match(String(refused?.message), new RegExp(`Cannot create schema "tenancy" for the central tables: role "${role}" may not create schemas in database "${name}"`))
  await sql(urlFor(name), `create schema tenancy authorization ${role}`)
  assert.equal(await registerOn(url), null, 'with the schema made for it, the role migrates and registers')
})
