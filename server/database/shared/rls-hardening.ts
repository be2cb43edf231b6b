import type pg from 'pg'
import { quoteIdent } from '../names.js'
import { PG, isInsufficientPrivilege, isUniqueViolation, pgCode } from '../pg-errors.js'

/**
 * What no grant takes from the app role, and only a superuser can: every
 * tenant runs as this one role, and PostgreSQL lets a role cancel or
 * terminate its own other sessions (another tenant's statement) and read
 * their statement text in pg_stat_activity (MikroORM inlines values).
 * Revoking the two functions from PUBLIC holds in one database (the shared
 * one); a role that needs them there gets them back by name. With
 * `track_activities` off for the app role its sessions show no text to
 * anyone but a superuser, and only a superuser may set it back on.
 */
export function hardeningSql (appRole: string): string[] {
  return [
    'revoke execute on function pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) from public',
    `alter role ${quoteIdent(appRole)} set track_activities = off`
  ]
}

/**
 * Runs what hardeningSql still has to change inside the caller's
 * transaction, each statement in a savepoint: an installer that may not (no
 * superuser) leaves it to the operator, and `tenants:rls --check` reports
 * what is left. The role setting is one row for the whole server, and the
 * caller's advisory lock holds in one database only: two central databases
 * sharing the app role (two apps, or staging beside production) may write it
 * at once. PostgreSQL makes the later writer wait for the earlier and then
 * fails it ("tuple concurrently updated", or a unique violation for a first
 * setting), so the statement is checked again and is then already done.
 */
export async function harden (client: pg.Client, appRole: string): Promise<void> {
  const [revoke, setting] = hardeningSql(appRole) as [string, string]
  const steps: Array<{ statement: string, needed: () => Promise<boolean> }> = [
    { statement: revoke, needed: async () => await publicMayCancel(client) },
    { statement: setting, needed: async () => !(await roleSettings(client, appRole)).includes('track_activities=off') }
  ]
  for (const step of steps) {
    for (let attempt = 1; await step.needed(); attempt++) {
      await client.query('savepoint fastify_tenancy_harden')
      try {
        await client.query(step.statement)
        await client.query('release savepoint fastify_tenancy_harden')
        break
      } catch (error) {
        await client.query('rollback to savepoint fastify_tenancy_harden')
        if (isInsufficientPrivilege(error)) break
        if (!isConcurrentCatalogWrite(error) || attempt === 3) throw error
      }
    }
  }
}

/** Another transaction changed the same catalog row first (it has committed by the time this is raised). */
function isConcurrentCatalogWrite (error: unknown): boolean {
  return isUniqueViolation(error) || (pgCode(error) === PG.INTERNAL_ERROR && /tuple concurrently (updated|deleted)/.test(String((error as Error).message)))
}

async function publicMayCancel (client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ may: boolean }>(`
    select has_function_privilege('public', 'pg_catalog.pg_cancel_backend(integer)', 'EXECUTE')
      or has_function_privilege('public', 'pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE') as may`)
  return rows[0]?.may === true
}

/** The app role's session defaults that hold in this database (`name=value`), read afresh by each statement. */
async function roleSettings (client: pg.Client, appRole: string): Promise<string[]> {
  const { rows } = await client.query<{ settings: string[] }>(`
    select coalesce((select array_agg(c order by c) from pg_db_role_setting s join pg_roles r on r.oid = s.setrole, unnest(s.setconfig) c
                     where r.rolname = $1 and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))), '{}') as settings`,
  [appRole])
  return rows[0]?.settings ?? []
}

/**
 * What hardeningSql would still change, each with the statement a superuser
 * runs in the shared database; and session defaults of the app role other
 * than track_activities, which any role may set for itself (`ALTER ROLE
 * CURRENT_USER SET ...`), so one tenant's SQL can leave them for every later
 * connection.
 */
export async function hardeningGaps (client: pg.Client, appRole: string): Promise<string[]> {
  const [row] = (await client.query<{ cancel: boolean, terminate: boolean, db: string }>(`
    select has_function_privilege($1, 'pg_catalog.pg_cancel_backend(integer)', 'EXECUTE') as cancel,
      has_function_privilege($1, 'pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE') as terminate,
      current_database() as db`, [appRole])).rows
  const settings = await roleSettings(client, appRole)
  if (row === undefined) return []
  const role = `"${appRole.replaceAll('"', '""')}"`
  const gaps: string[] = []
  if (row.cancel || row.terminate) {
    gaps.push(`the role ${role} may cancel and terminate other tenants' statements (pg_cancel_backend, pg_terminate_backend): as a superuser, in database "${row.db}", run \`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC\``)
  }
  if (!settings.includes('track_activities=off')) {
    gaps.push(`other tenants' statement text is visible to the role ${role} in pg_stat_activity: as a superuser run \`ALTER ROLE ${role} SET track_activities = off\``)
  }
  const others = settings.filter((s) => s !== 'track_activities=off').map((s) => s.slice(0, s.indexOf('=')))
  if (others.length > 0) {
    gaps.push(`the role ${role} has session defaults (${others.join(', ')}) that every new connection starts with; the role may set them itself, so a tenant's SQL may have: check them, and run ${others.map((name) => `\`ALTER ROLE ${role} RESET ${name}\``).join(' and ')}`)
  }
  return gaps
}
