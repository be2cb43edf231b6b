import type pg from 'pg'

/**
 * What the app role of strategy `shared` must not be able to do, read from
 * the catalogs as that role. PostgreSQL's row-level security holds only
 * against a role that cannot turn it off, step around it or leave state for
 * the next tenant on a pooled connection; every tenant runs as this one role,
 * so one tenant's hand-written SQL has whatever this role has.
 *
 * "Can become" follows role membership the whole way: a grant counts when it
 * passes privileges (INHERIT), allows SET ROLE (SET), or lets the member grant
 * the role to itself (ADMIN). A chain of such grants is followed to its end, so
 * `grant central to app with inherit false` (SET ROLE still crosses) is seen.
 * This is slightly wider than PostgreSQL's own rules (an INHERIT-only grant
 * followed by a SET-only one does not really let the app SET ROLE): in doubt,
 * refuse.
 */

/** One right the app role must not have, and how an operator removes it. */
export interface RoleRisk {
  /** What the role can do, as a sentence fragment ("can become the superuser "x" (app → x)"). */
  what: string
  /** SQL an operator (a superuser or the grantor) runs to remove it. */
  fix: string[]
}

/** Predefined roles that reach past grants or policies, or into other sessions. */
const DANGEROUS_PREDEFINED: Readonly<Record<string, string>> = {
  pg_read_all_data: 'reads every table, the central ones included',
  pg_write_all_data: 'writes every table, the central ones included',
  pg_read_all_stats: 'sees every session\'s statement text, the central role\'s included',
  pg_signal_backend: 'cancels and terminates any other session',
  pg_execute_server_program: 'runs programs on the database server',
  pg_read_server_files: 'reads files on the database server',
  pg_write_server_files: 'writes files on the database server'
}

/** Table rights a tenant's SQL could use on every tenant at once (TRUNCATE ignores RLS; REFERENCES and TRIGGER see others' rows; MAINTAIN locks and rewrites the table). */
const TABLE_RIGHTS = ['TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN']

/** A name quoted as an SQL identifier for a statement shown to the operator (any name, not only our safe ones). */
function ident (name: string): string {
  return '"' + name.replaceAll('"', '""') + '"'
}

function grantee (name: string | null): string {
  return name === null ? 'PUBLIC' : ident(name)
}

interface Reached { oid: string, name: string, superuser: boolean, bypassRls: boolean, createRole: boolean, path: string[] }

/** The roles the connected role is, or can become, with the shortest chain of grants to each. */
async function reachableRoles (client: pg.Client): Promise<Reached[]> {
  // set_option and inherit_option exist from PostgreSQL 16; before, every grant did both (to_jsonb reads them when present).
  const rows = await client.query<{ oid: string, name: string, superuser: boolean, bypass: boolean, createrole: boolean, path: string[] }>(`
    with recursive reach (oid, path) as (
      select r.oid, array[r.rolname::text] from pg_roles r where r.rolname = current_user
      union all
      select m.roleid, reach.path || g.rolname::text
      from reach
      join pg_auth_members m on m.member = reach.oid
      join pg_roles g on g.oid = m.roleid
      where (m.admin_option
          or coalesce((to_jsonb(m) ->> 'set_option')::boolean, true)
          or coalesce((to_jsonb(m) ->> 'inherit_option')::boolean, true))
        and not g.rolname::text = any (reach.path)
    )
    select distinct on (r.oid) r.oid::text as oid, r.rolname::text as name, r.rolsuper as superuser, r.rolbypassrls as bypass, r.rolcreaterole as createrole, reach.path
    from reach join pg_roles r on r.oid = reach.oid
    order by r.oid, array_length(reach.path, 1)`)
  return rows.rows.map((r) => ({ oid: r.oid, name: r.name, superuser: r.superuser, bypassRls: r.bypass, createRole: r.createrole, path: r.path }))
}

/** The grant an operator revokes so the app role no longer reaches `r`: its own membership that starts the chain. */
function breakChain (r: Reached): string {
  return `REVOKE ${ident(r.path[1] as string)} FROM ${ident(r.path[0] as string)}`
}

/**
 * Every right of the connected role (the app role) that would let one tenant's
 * SQL cross into another tenant's rows or leave state behind; empty when it
 * is safe. `schema` is the shared schema, `centralRole` the role that may cross.
 */
export async function roleRisks (client: pg.Client, schema: string, centralRole: string): Promise<RoleRisk[]> {
  const version = Number((await client.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v ?? 0)
  const reached = await reachableRoles(client)
  const oids = reached.map((r) => r.oid)
  const risks: RoleRisk[] = []

  // Owners may turn row-level security off; the schema's owner may drop any table in it; the database's may set session defaults for every connection.
  const owned = await client.query<{ what: string, owner: string, fix: string }>(`
    select 'tenant table ' || n.nspname || '.' || c.relname as what, c.relowner::text as owner,
      'ALTER TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' OWNER TO ' || quote_ident($3) as fix
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind in ('r', 'p') and c.relowner = any ($2::oid[])
    union all
    select 'schema ' || n.nspname, n.nspowner::text, 'ALTER SCHEMA ' || quote_ident(n.nspname) || ' OWNER TO ' || quote_ident($3)
    from pg_namespace n where n.nspname = $1 and n.nspowner = any ($2::oid[])
    union all
    select 'database ' || d.datname, d.datdba::text, 'ALTER DATABASE ' || quote_ident(d.datname) || ' OWNER TO ' || quote_ident($3)
    from pg_database d where d.datname = current_database() and d.datdba = any ($2::oid[])
    order by 1`, [schema, oids, centralRole])

  for (const r of reached) {
    const self = r.path.length === 1
    const what: string[] = []
    const fix: string[] = []
    if (r.superuser) { what.push('a superuser'); if (self) fix.push(`ALTER ROLE ${ident(r.name)} NOSUPERUSER`) }
    if (r.bypassRls) { what.push('a BYPASSRLS role'); if (self) fix.push(`ALTER ROLE ${ident(r.name)} NOBYPASSRLS`) }
    if (r.name === centralRole) what.push('the central role, whose policy crosses tenants')
    const predefined = DANGEROUS_PREDEFINED[r.name]
    if (predefined !== undefined) what.push(`a role that ${predefined}`)
    // Before PostgreSQL 16, CREATEROLE may grant itself any role that is not a superuser (the central role included).
    if (r.createRole && version < 160000) { what.push('a CREATEROLE role, which may grant itself the central role'); if (self) fix.push(`ALTER ROLE ${ident(r.name)} NOCREATEROLE`) }
    const owns = owned.rows.filter((o) => o.owner === r.oid)
    if (owns.length > 0) {
      what.push(`the owner of ${owns.map((o) => o.what).join(', ')}`)
      if (self) fix.push(...owns.map((o) => o.fix))
    }
    if (what.length === 0) continue
    if (self) {
      risks.push({ what: `is ${what.join(', ')}`, fix })
    } else {
      risks.push({ what: `can become ${ident(r.name)} (${r.path.join(' → ')}), ${what.join(', ')}`, fix: [breakChain(r)] })
    }
  }

  // Rights granted to the app role, to a role it can become, or to PUBLIC, named on the grantee they must be revoked from.
  const rights = TABLE_RIGHTS.filter((p) => p !== 'MAINTAIN' || version >= 170000)
  const granted = await client.query<{ kind: string, grantee: string | null, rights: string[], objects: string[] }>(`
    with acl as (
      select 'table' as kind, c.relname::text as object, a.grantee, a.privilege_type
      from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
      where n.nspname = $1 and c.relkind in ('r', 'p') and a.privilege_type = any ($3::text[])
      union all
      select 'schema', n.nspname::text, a.grantee, a.privilege_type
      from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
      where n.nspname = $1 and a.privilege_type = 'CREATE'
      union all
      select 'database', d.datname::text, a.grantee, a.privilege_type
      from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
      where d.datname = current_database() and a.privilege_type = 'TEMPORARY'
    )
    select kind, g.rolname::text as grantee, array_agg(distinct privilege_type order by privilege_type) as rights, array_agg(distinct object order by object) as objects
    from acl left join pg_roles g on g.oid = acl.grantee
    where acl.grantee = 0 or acl.grantee = any ($2::oid[])
    group by kind, g.rolname`, [schema, oids, rights])
  for (const g of granted.rows) {
    const holder = g.grantee === null ? null : reached.find((r) => r.name === g.grantee) ?? null
    const through = holder === null ? ' (granted to PUBLIC)' : holder.path.length === 1 ? '' : ` (granted to ${ident(holder.name)}: ${holder.path.join(' → ')})`
    if (g.kind === 'table') {
      const list = TABLE_RIGHTS.filter((p) => g.rights.includes(p))
      risks.push({
        what: `has ${list.join(', ')} on ${g.objects.map((o) => `${schema}.${o}`).join(', ')}${through}, which one tenant's SQL uses on every tenant's rows at once`,
        fix: [`REVOKE ${list.join(', ')} ON ALL TABLES IN SCHEMA ${ident(schema)} FROM ${grantee(g.grantee)}`]
      })
    } else if (g.kind === 'schema') {
      risks.push({
        what: `has CREATE on schema ${ident(schema)}${through}, so a tenant could put objects beside the shared tables`,
        fix: [`REVOKE CREATE ON SCHEMA ${ident(schema)} FROM ${grantee(g.grantee)}`]
      })
    } else {
      const db = g.objects[0] as string
      risks.push({
        what: `has TEMP on database ${ident(db)}${through}: a tenant's temporary table named like a shared table would shadow it for the next tenant on the same connection`,
        // PUBLIC holds TEMP on every new database: revoking it from the app role alone changes nothing.
        fix: [`REVOKE TEMPORARY ON DATABASE ${ident(db)} FROM ${grantee(g.grantee)}`]
      })
    }
  }
  return risks
}

/** The risks as one sentence for FST_TENANCY_RLS_UNSAFE_ROLE: each with the statements (in backticks) that remove it. */
export function describeRisks (risks: RoleRisk[]): string {
  return risks.map((r) => {
    const fix = r.fix.filter((f) => f !== '')
    return fix.length === 0 ? r.what : `${r.what}: run ${fix.map((f) => `\`${f}\``).join(' and ')}`
  }).join('; ')
}
