import type pg from 'pg'
import { quoteIdent } from '../names.js'
import { isInsufficientPrivilege } from '../pg-errors.js'

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
 * Runs hardeningSql inside the caller's transaction, each statement in a
 * savepoint: an installer that may not (no superuser) leaves it to the
 * operator, and `tenants:rls --check` reports what is left.
 */
export async function harden (client: pg.Client, appRole: string): Promise<void> {
  for (const statement of hardeningSql(appRole)) {
    await client.query('savepoint fastify_tenancy_harden')
    try {
      await client.query(statement)
      await client.query('release savepoint fastify_tenancy_harden')
    } catch (error) {
      if (!isInsufficientPrivilege(error)) throw error
      await client.query('rollback to savepoint fastify_tenancy_harden')
    }
  }
}

/**
 * What hardeningSql would still change, each with the statement a superuser
 * runs in the shared database; and session defaults of the app role other
 * than track_activities, which any role may set for itself (`ALTER ROLE
 * CURRENT_USER SET ...`), so one tenant's SQL can leave them for every later
 * connection.
 */
export async function hardeningGaps (client: pg.Client, appRole: string): Promise<string[]> {
  const [row] = (await client.query<{ cancel: boolean, terminate: boolean, settings: string[], db: string }>(`
    select has_function_privilege($1, 'pg_catalog.pg_cancel_backend(integer)', 'EXECUTE') as cancel,
      has_function_privilege($1, 'pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE') as terminate,
      coalesce((select array_agg(c order by c) from pg_db_role_setting s join pg_roles r on r.oid = s.setrole, unnest(s.setconfig) c
                where r.rolname = $1 and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))), '{}') as settings,
      current_database() as db`, [appRole])).rows
  if (row === undefined) return []
  const role = `"${appRole.replaceAll('"', '""')}"`
  const gaps: string[] = []
  if (row.cancel || row.terminate) {
    gaps.push(`the role ${role} may cancel and terminate other tenants' statements (pg_cancel_backend, pg_terminate_backend): as a superuser, in database "${row.db}", run \`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC\``)
  }
  if (!row.settings.includes('track_activities=off')) {
    gaps.push(`other tenants' statement text is visible to the role ${role} in pg_stat_activity: as a superuser run \`ALTER ROLE ${role} SET track_activities = off\``)
  }
  const others = row.settings.filter((s) => s !== 'track_activities=off').map((s) => s.slice(0, s.indexOf('=')))
  if (others.length > 0) {
    gaps.push(`the role ${role} has session defaults (${others.join(', ')}) that every new connection starts with; the role may set them itself, so a tenant's SQL may have: check them, and run ${others.map((name) => `\`ALTER ROLE ${role} RESET ${name}\``).join(' and ')}`)
  }
  return gaps
}
