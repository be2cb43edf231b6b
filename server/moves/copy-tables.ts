import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { literal, quoteAny, tenantTables } from './replication.js'
import { TENANT_COLUMN } from '../database/shared/rls-sql.js'

/**
 * Copies the rows of every tenant table from one database (or schema) to the
 * same tables in another, each through PostgreSQL's COPY (streamed: a table
 * is never held in memory). For moves without logical replication (offline),
 * with the source fenced so nothing changes meanwhile. The target's tables
 * must be empty. With `rowsOf` only that tenant's rows of shared tables are
 * copied. Returns the rows copied per table.
 */
export async function copyTables (
  source: pg.ClientBase, sourceSchema: string | null, target: pg.ClientBase, targetSchema: string | null, rowsOf?: string
): Promise<Record<string, number>> {
  const tables = await referencedFirst(source, await tenantTables(source, sourceSchema))
  const copied: Record<string, number> = {}
  await target.query('begin')
  try {
    // Rows go in as they are, without the target's triggers and foreign key checks (the source had them), where the role may.
    await target.query('savepoint replica')
    await target.query('set local session_replication_role = replica').then(
      async () => await target.query('release savepoint replica'),
      async () => await target.query('rollback to savepoint replica'))
    for (const t of tables) {
      const into = targetSchema === null ? t.quoted : `"${targetSchema}".${t.quoted.slice(t.quoted.indexOf('.') + 1)}`
      // Named columns: two copies of a table made by different histories may order them differently.
      const columns = (await columnsOf(source, t.quoted)).join(', ')
      const rows = rowsOf === undefined
        ? `${t.quoted} (${columns})`
        : `(select ${columns} from ${t.quoted} where ${TENANT_COLUMN} = ${literal(rowsOf)})`
      const out = source.query(copyTo(`copy ${rows} to stdout`))
      const sink = target.query(copyFrom(`copy ${into} (${columns}) from stdin`))
      await pipeline(out, sink)
      copied[`${t.schema}.${t.table}`] = sink.rowCount
    }
    await target.query('commit')
  } catch (error) {
    await target.query('rollback').catch(() => {})
    throw error
  }
  return copied
}

/** A table's stored columns, quoted, in its order. */
async function columnsOf (client: pg.ClientBase, quoted: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(`select a.attname as name from pg_attribute a
    where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by a.attnum`, [quoted])
  return rows.map((r) => quoteAny(r.name))
}

/** The tables in an order where a table comes after the tables its foreign keys point at (as far as cycles allow). */
export async function referencedFirst<T extends { schema: string, table: string }> (client: pg.ClientBase, tables: T[]): Promise<T[]> {
  const { rows } = await client.query<{ from_schema: string, from_table: string, to_schema: string, to_table: string }>(`
    select fn.nspname as from_schema, f.relname as from_table, tn.nspname as to_schema, t.relname as to_table
      from pg_constraint c
      join pg_class f on f.oid = c.conrelid join pg_namespace fn on fn.oid = f.relnamespace
      join pg_class t on t.oid = c.confrelid join pg_namespace tn on tn.oid = t.relnamespace
     where c.contype = 'f' and c.conrelid <> c.confrelid`)
  const id = (schema: string, table: string): string => `${schema}.${table}`
  const needs = new Map<string, Set<string>>()
  for (const r of rows) {
    const from = id(r.from_schema, r.from_table)
    if (!needs.has(from)) needs.set(from, new Set())
    needs.get(from)?.add(id(r.to_schema, r.to_table))
  }
  const ordered: T[] = []
  const placed = new Set<string>()
  let left = [...tables]
  while (left.length > 0) {
    const ready = left.filter((t) => [...(needs.get(id(t.schema, t.table)) ?? [])]
      .every((n) => placed.has(n) || !left.some((l) => id(l.schema, l.table) === n)))
    const next = ready.length > 0 ? ready : [left[0] as T]
    for (const t of next) { ordered.push(t); placed.add(id(t.schema, t.table)) }
    left = left.filter((t) => !placed.has(id(t.schema, t.table)))
  }
  return ordered
}
