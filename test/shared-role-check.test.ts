import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { buildApp } from './helpers/app.js'
import { freshCentral, serverUrl, sql, type CentralDatabase } from './helpers/database.js'
import { asRole, prepareShared } from './helpers/shared.js'
import { until, within } from './helpers/poll.js'
import { applyRls, createAppRole } from '../server/database/shared/rls-policies.js'

/**
 * The register-time check of strategy `shared`'s app role: it follows role
 * membership (INHERIT FALSE, SET and ADMIN options too) and refuses every
 * right that lets one tenant's SQL reach past the policies or leave state
 * for the next tenant. Each refusal names the right and the statement that
 * removes it; running that statement lets the plugin register.
 */

interface World { central: CentralDatabase, role: string, url: string, roles: (name: string, attributes?: string) => Promise<string> }

/** A fresh central database with the shared tables, and a fresh app role made as an operator would (createAppRole, then tenants:rls). */
async function world (t: TestContext): Promise<World> {
  const central = await freshCentral(t)
  await prepareShared(central)
  const made: string[] = []
  // After the central database is dropped (hooks run in order), so no privilege keeps a role.
  t.after(async () => {
    for (const name of made.reverse()) await sql(serverUrl(), `drop role if exists "${name}"`).catch(() => {})
  })
  const roles = async (name: string, attributes = ''): Promise<string> => {
    const full = `ft_${name}_${randomBytes(4).toString('hex')}`
    await sql(serverUrl(), `create role "${full}" ${attributes}`)
    made.push(full)
    return full
  }
  const role = `ft_app_${randomBytes(4).toString('hex')}`
  await createAppRole(central.url, role, 'pw')
  made.push(role)
  await applyRls({ url: central.url, schema: 'tenant_shared', centralRole: decodeURIComponent(new URL(central.url).username), appRole: role })
  return { central, role, url: asRole(central.url, role, 'pw'), roles }
}

/** Runs statements in one session; the last one's rows. */
async function asOneSession (url: string, statements: string[]): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    let rows: unknown[] = []
    for (const s of statements) rows = (await client.query(s)).rows
    return rows
  } finally {
    await client.end()
  }
}

async function register (t: TestContext, w: World): Promise<unknown> {
  return await buildApp(t, { strategy: 'shared', shared: { url: w.url }, cache: { listen: false } }, () => {}, w.central)
}

/** The statements the refusal tells the operator to run (in backticks). */
function fixesIn (message: string): string[] {
  return [...message.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string)
}

/** Refused with FST_TENANCY_RLS_UNSAFE_ROLE and a message matching every pattern; returns the message. */
async function refused (t: TestContext, w: World, ...patterns: RegExp[]): Promise<string> {
  let message = ''
  await assert.rejects(register(t, w), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'FST_TENANCY_RLS_UNSAFE_ROLE', error.message)
    message = error.message
    return true
  })
  for (const p of patterns) assert.match(message, p)
  return message
}

/** Runs the fixes the message names (as the central role), then the plugin registers. */
async function fixThenRegister (t: TestContext, w: World, message: string, database = w.central.url): Promise<void> {
  const fixes = fixesIn(message)
  assert.ok(fixes.length > 0, `the refusal names a statement to run: ${message}`)
  for (const fix of fixes) await sql(database, fix)
  await register(t, w)
}

test('the plugin accepts the role createAppRole makes (no TEMP, not even through PUBLIC) once tenants:rls has granted it the shared tables', async (t) => {
  const w = await world(t)
  assert.deepEqual(await sql(w.central.url, "select has_database_privilege($1, current_database(), 'TEMP') as temp", [w.role]), [{ temp: false }])
  await assert.rejects(sql(w.url, 'create temp table projects (title text)'), { code: '42501' })
  await register(t, w)
})

test('two central databases sharing one app role install at once: the later waits for the earlier\'s role setting, and both finish', async (t) => {
  const w = await world(t)
  const other = await freshCentral(t)
  await sql(other.url, 'create schema tenant_shared')
  const centralRole = decodeURIComponent(new URL(other.url).username)
  // The setting is one row for the whole server. An installer in the first database writes it and has not committed yet.
  await sql(serverUrl(), `alter role "${w.role}" reset track_activities`)
  const earlier = new pg.Client({ connectionString: w.central.url })
  // Ended by the database's drop when the test fails before its end.
  earlier.on('error', () => {})
  await earlier.connect()
  await earlier.query('begin')
  await earlier.query(`alter role "${w.role}" set track_activities = off`)
  const later = applyRls({ url: other.url, schema: 'tenant_shared', centralRole, appRole: w.role })
  later.catch(() => {})
  await until(async () => (await sql(serverUrl(), "select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'", [other.name]))[0]?.n === 1,
    { what: 'the later installer waits for the earlier one\'s row' })
  await earlier.query('commit')
  await within(later, { what: 'the later installer finishes', timeoutMs: 20_000 })
  assert.deepEqual(await sql(other.url, 'select setconfig from pg_db_role_setting where setrole = (select oid from pg_roles where rolname = $1) and setdatabase = 0', [w.role]),
    [{ setconfig: ['track_activities=off'] }])
  await earlier.end()
  await register(t, w)
})

test('an app role that is a member of a BYPASSRLS role is refused', async (t) => {
  const w = await world(t)
  const bypass = await w.roles('bypass', 'bypassrls')
  await sql(w.central.url, `grant "${bypass}" to "${w.role}"`)
  const message = await refused(t, w, new RegExp(`can become "${bypass}" \\(${w.role} → ${bypass}\\), a BYPASSRLS role`), new RegExp(`REVOKE "${bypass}" FROM "${w.role}"`))
  await fixThenRegister(t, w, message)
})

test('an app role that is a member of the central role WITH INHERIT FALSE is refused: SET ROLE would cross tenants', async (t) => {
  const w = await world(t)
  const central = decodeURIComponent(new URL(w.central.url).username)
  await sql(w.central.url, `grant "${central}" to "${w.role}" with inherit false`)
  // What the check guards against: the app role becomes the central role and reads every tenant's rows.
  await sql(w.central.url, "insert into tenant_shared.projects (tenant_key, title) values (gen_random_uuid(), 'someone else''s')")
  assert.deepEqual(await asOneSession(w.url, [`set role "${central}"`, 'select title from tenant_shared.projects']), [{ title: "someone else's" }])
  const message = await refused(t, w, new RegExp(`can become "${central}" .*the central role`))
  await fixThenRegister(t, w, message)
})

test('an app role that can SET ROLE to a superuser through two memberships (INHERIT FALSE at each step) is refused', async (t) => {
  const w = await world(t)
  const group = await w.roles('group', 'nologin')
  const admin = await w.roles('super', 'nologin superuser')
  await sql(w.central.url, `grant "${group}" to "${w.role}" with inherit false; grant "${admin}" to "${group}" with inherit false`)
  const message = await refused(t, w, new RegExp(`can become "${admin}" \\(${w.role} → ${group} → ${admin}\\), a superuser`), new RegExp(`REVOKE "${group}" FROM "${w.role}"`))
  await fixThenRegister(t, w, message)
})

test('an app role holding only the ADMIN option on a BYPASSRLS role is refused: it can grant that role to itself', async (t) => {
  const w = await world(t)
  const bypass = await w.roles('bypass', 'bypassrls')
  await sql(w.central.url, `grant "${bypass}" to "${w.role}" with admin true, inherit false, set false`)
  const message = await refused(t, w, new RegExp(`can become "${bypass}" .*a BYPASSRLS role`))
  await fixThenRegister(t, w, message)
})

test('an app role that can become the owner of a tenant table (INHERIT FALSE) is refused', async (t) => {
  const w = await world(t)
  const owner = await w.roles('owner', 'nologin')
  await sql(w.central.url, `alter table tenant_shared.projects owner to "${owner}"; grant "${owner}" to "${w.role}" with inherit false`)
  const message = await refused(t, w, new RegExp(`can become "${owner}" .*the owner of tenant table tenant_shared.projects`), new RegExp(`REVOKE "${owner}" FROM "${w.role}"`))
  await fixThenRegister(t, w, message)
})

test('an app role with ALL on the shared tables is refused for TRUNCATE, REFERENCES and TRIGGER (one tenant\'s truncate ... cascade empties every tenant)', async (t) => {
  const w = await world(t)
  await sql(w.central.url, `grant all on all tables in schema tenant_shared to "${w.role}"`)
  const message = await refused(t, w, /TRUNCATE/, /REFERENCES/, /TRIGGER/, new RegExp(`REVOKE TRUNCATE, REFERENCES, TRIGGER(, MAINTAIN)? ON ALL TABLES IN SCHEMA "tenant_shared" FROM "${w.role}"`))
  await fixThenRegister(t, w, message)
})

test('TRUNCATE granted to a group the app role belongs to, or to PUBLIC, is refused and named on the grantee', async (t) => {
  const w = await world(t)
  const group = await w.roles('group', 'nologin')
  await sql(w.central.url, `grant truncate on tenant_shared.projects to "${group}"; grant "${group}" to "${w.role}" with inherit false; grant trigger on tenant_shared.users to public`)
  const message = await refused(t, w, new RegExp(`FROM "${group}"`), /FROM PUBLIC/)
  await fixThenRegister(t, w, message)
})

test('an app role with CREATE on the shared schema is refused', async (t) => {
  const w = await world(t)
  await sql(w.central.url, `grant create on schema tenant_shared to "${w.role}"`)
  const message = await refused(t, w, /CREATE on schema "tenant_shared"/, new RegExp(`REVOKE CREATE ON SCHEMA "tenant_shared" FROM "${w.role}"`))
  await fixThenRegister(t, w, message)
})

test('TEMP on the shared database, which PUBLIC has by default, is refused with the exact REVOKE', async (t) => {
  const w = await world(t)
  // Put back PostgreSQL's default: every role may make temporary tables in a new database.
  await sql(w.central.url, `grant temporary on database "${w.central.name}" to public`)
  const message = await refused(t, w, /TEMP/, new RegExp(`REVOKE TEMPORARY ON DATABASE "${w.central.name}" FROM PUBLIC`))
  await fixThenRegister(t, w, message)
  // The fix takes TEMP from PUBLIC, and the central role keeps it.
  assert.deepEqual(await sql(w.central.url, "select has_database_privilege($1, current_database(), 'TEMP') as app, has_database_privilege(current_user, current_database(), 'TEMP') as central", [w.role]), [{ app: false, central: true }])
})

test('createAppRole takes TEMP from PUBLIC on a database of the default kind, and is idempotent for a role made before', async (t) => {
  const central = await freshCentral(t)
  const role = `ft_app_${randomBytes(4).toString('hex')}`
  t.after(async () => { await sql(serverUrl(), `drop role if exists "${role}"`).catch(() => {}) })
  assert.deepEqual(await sql(central.url, "select has_database_privilege('public', current_database(), 'TEMP') as temp"), [{ temp: true }])
  await createAppRole(central.url, role, 'pw')
  await createAppRole(central.url, role, 'pw')
  assert.deepEqual(await sql(central.url, "select has_database_privilege($1, current_database(), 'TEMP') as temp", [role]), [{ temp: false }])
  await assert.rejects(sql(asRole(central.url, role, 'pw'), 'create temp table x (a int)'), { code: '42501' })
})

test('an app role in pg_read_all_data or pg_signal_backend is refused', async (t) => {
  const w = await world(t)
  await sql(w.central.url, `grant pg_read_all_data, pg_signal_backend to "${w.role}" with inherit false`)
  const message = await refused(t, w, /pg_read_all_data/, /pg_signal_backend/)
  await fixThenRegister(t, w, message)
})
