import type pg from 'pg'
import { INDEX_HAS_TENANT, PAIRS_TENANT, TENANT_COLUMN, perTenantKeysSql, tenantTablesSql } from './rls-sql.js'

/**
 * Keys of the shared tables that row-level security does not cover. A unique
 * index checks every row of the table, whatever the policy lets a tenant see,
 * so a unique without `tenant_key` refuses one tenant a value only another
 * has (and tells it so). A foreign key check ignores the policy too, so a
 * foreign key without `tenant_key` lets a row point at another tenant's row,
 * and that row then blocks the other tenant's delete. Made per tenant
 * (composite with `tenant_key`), both hold inside one tenant only: a serial
 * id is then unique per tenant as well, so an explicit id tells a tenant
 * nothing about another's rows.
 */

/** A unique key (or exclusion constraint) of a tenant table that holds across tenants. */
export interface GlobalKey {
  table: string
  name: string
  kind: 'primary key' | 'unique constraint' | 'unique index' | 'exclusion constraint'
  /** Its definition as PostgreSQL prints it. */
  definition: string
  /** Why tenants:rls cannot make it per tenant (an exclusion constraint, a key a table outside the tenant tables references); absent when it can. */
  reason?: string
}

/** A foreign key to or from a tenant table that does not pair `tenant_key` with `tenant_key`. */
export interface GlobalForeignKey {
  table: string
  name: string
  definition: string
  /** Why tenants:rls cannot make it per tenant (it is on a table outside the tenant tables); absent when it can. */
  reason?: string
}

export interface KeyReport {
  keys: GlobalKey[]
  foreignKeys: GlobalForeignKey[]
  /** Per-tenant foreign keys left NOT VALID because rows made before still point at another tenant's rows. */
  unvalidated: Array<{ table: string, name: string }>
}

/** Everything about the keys of the tenant tables of `schema` that holds across tenants. */
export async function inspectKeys (client: pg.Client, schema: string): Promise<KeyReport> {
  const tenant = tenantTablesSql('$1')
  const uniques = await client.query<{ table: string, name: string, kind: GlobalKey['kind'], definition: string, outside: string | null }>(`
    select c.relname::text as table, coalesce(k.conname, i.relname)::text as name,
      case k.contype when 'p' then 'primary key' when 'u' then 'unique constraint' when 'x' then 'exclusion constraint' else 'unique index' end as kind,
      coalesce(pg_get_constraintdef(k.oid), pg_get_indexdef(x.indexrelid)) as definition,
      (select string_agg(distinct fn.nspname || '.' || fc.relname, ', ') from pg_constraint f join pg_class fc on fc.oid = f.conrelid join pg_namespace fn on fn.oid = fc.relnamespace
       where f.contype = 'f' and f.conindid = x.indexrelid and f.conrelid not in (${tenant})) as outside
    from pg_index x
    join pg_class i on i.oid = x.indexrelid
    join pg_class c on c.oid = x.indrelid
    left join pg_constraint k on k.conindid = x.indexrelid and k.conrelid = c.oid and k.contype in ('p', 'u', 'x')
    where x.indrelid in (${tenant}) and not c.relispartition and (x.indisunique or k.contype = 'x') and not ${INDEX_HAS_TENANT}
    order by c.relname, 2`, [schema])
  const foreign = await client.query<{ table: string, name: string, definition: string, from_tenant: boolean, pairs: boolean, validated: boolean, held: string | null }>(`
    select case when n.nspname = $1 then c.relname::text else n.nspname || '.' || c.relname end as table, k.conname::text as name,
      pg_get_constraintdef(k.oid) as definition, k.conrelid in (${tenant}) as from_tenant, ${PAIRS_TENANT} as pairs, k.convalidated as validated,
      (select string_agg(distinct on_n.nspname || '.' || on_c.relname, ', ') from pg_constraint o join pg_class on_c on on_c.oid = o.conrelid join pg_namespace on_n on on_n.oid = on_c.relnamespace
       where o.contype = 'f' and o.conindid = k.conindid and o.conrelid not in (${tenant})) as held
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    where k.contype = 'f' and k.conparentid = 0 and k.confrelid in (${tenant})
    order by 1, 2`, [schema])
  return {
    keys: uniques.rows.map((u) => ({
      table: u.table,
      name: u.name,
      kind: u.kind,
      definition: u.definition,
      ...(u.kind === 'exclusion constraint'
        ? { reason: `add "${TENANT_COLUMN} WITH =" to it by hand (with the btree_gist extension for a gist index)` }
        : u.outside !== null ? { reason: `${u.outside} references it` } : {})
    })),
    foreignKeys: foreign.rows.filter((f) => !f.pairs).map((f) => ({
      table: f.table,
      name: f.name,
      definition: f.definition,
      ...(!f.from_tenant
        ? { reason: 'it is on a table outside the tenant tables: drop it, or make that table a tenant table' }
        : f.held !== null ? { reason: `the key it references stays global while ${f.held} references it` } : {})
    })),
    unvalidated: foreign.rows.filter((f) => f.pairs && f.from_tenant && !f.validated).map((f) => ({ table: f.table, name: f.name }))
  }
}

/** True when nothing in the report lets a key hold across tenants (NOT VALID per-tenant foreign keys are tenant-safe for every new row). */
export function tenantSafe (report: KeyReport): boolean {
  return report.keys.length === 0 && report.foreignKeys.length === 0
}

/** The report's keys as one list for an error or the CLI: `contacts: unique index contacts_email (CREATE UNIQUE INDEX ...)`. */
export function describeKeys (report: KeyReport): string[] {
  return [
    ...report.keys.map((k) => `${k.table}: ${k.kind} ${k.name} (${k.definition})${k.reason === undefined ? '' : `, which tenants:rls cannot change: ${k.reason}`}`),
    ...report.foreignKeys.map((f) => `${f.table}: foreign key ${f.name} without ${TENANT_COLUMN} (${f.definition})${f.reason === undefined ? '' : `, which tenants:rls cannot change: ${f.reason}`}`)
  ]
}

/**
 * Makes every key of the tenant tables of `schema` per tenant, inside the
 * caller's transaction (perTenantKeysSql). Returns the tables whose keys it
 * changed and the foreign keys it had to leave NOT VALID.
 */
export async function makeKeysPerTenant (
  client: pg.Client, schema: string
): Promise<{ changed: string[], unvalidated: Array<{ table: string, name: string }> }> {
  const before = await inspectKeys(client, schema)
  if (tenantSafe(before) && before.unvalidated.length === 0) return { changed: [], unvalidated: [] }
  await client.query(perTenantKeysSql(schema))
  const after = await inspectKeys(client, schema)
  const changed = new Set([...before.keys, ...before.foreignKeys].filter((k) => k.reason === undefined).map((k) => k.table))
  return { changed: [...changed].sort(), unvalidated: after.unvalidated }
}

/**
 * The tables in the order a tenant's rows can be deleted without a foreign key
 * refusing: a table before the tables it references. Tables that reference
 * each other (a cycle, a table referencing itself) come as one group marked
 * `together`: their rows go in one statement, since a batch could leave a row
 * that a row of a later batch references (the checks run at the statement's end).
 */
export async function deletionOrder (client: pg.Client, schema: string, tables: string[]): Promise<Array<{ tables: string[], together: boolean }>> {
  const set = new Set(tables)
  const edges = await client.query<{ from: string, to: string }>(`
    select c.relname::text as from, f.relname::text as to
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    join pg_class f on f.oid = k.confrelid join pg_namespace fn on fn.oid = f.relnamespace
    where k.contype = 'f' and n.nspname = $1 and fn.nspname = $1`, [schema])
  const refs = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]))
  for (const e of edges.rows) if (set.has(e.from) && set.has(e.to)) refs.get(e.from)?.add(e.to)
  // Tarjan's strongly connected components come out referenced-first; reversed, each group precedes what it references.
  let index = 0
  const order: string[][] = []
  const stack: string[] = []
  const at = new Map<string, { index: number, low: number, on: boolean }>()
  const visit = (v: string): void => {
    const node = { index, low: index, on: true }
    at.set(v, node)
    index++
    stack.push(v)
    for (const w of refs.get(v) ?? []) {
      const seen = at.get(w)
      if (seen === undefined) {
        visit(w)
        node.low = Math.min(node.low, (at.get(w) as { low: number }).low)
      } else if (seen.on) {
        node.low = Math.min(node.low, seen.index)
      }
    }
    if (node.low === node.index) {
      const group: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        ;(at.get(w) as { on: boolean }).on = false
        group.push(w)
      } while (w !== v)
      order.push(group.sort())
    }
  }
  for (const t of [...tables].sort()) if (!at.has(t)) visit(t)
  const selfReferencing = new Set(edges.rows.filter((e) => e.from === e.to).map((e) => e.from))
  return order.reverse().map((g) => ({ tables: g, together: g.length > 1 || selfReferencing.has(g[0] as string) }))
}
