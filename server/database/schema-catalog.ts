import { createHash } from 'node:crypto'
import type pg from 'pg'

/**
 * One schema's catalog as sorted lines: its tables, their columns (type, not
 * null, default), indexes and constraints. The schema's own name is taken out
 * of every definition, so a tenant's schema (strategy `schema`) or database
 * (strategy `database`, schema `public`) compares equal to the template's
 * when they were made by the same migrations. Column order is left out: a
 * column dropped and added again is the same schema to a query.
 */
export async function catalogLines (client: pg.ClientBase, schema: string): Promise<string[]> {
  const relations = await client.query(`select c.relname as name, c.relkind as kind
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')`, [schema])
  const columns = await client.query(`select c.relname as rel, a.attname as name, pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
      a.attnotnull as not_null, pg_catalog.pg_get_expr(d.adbin, d.adrelid) as def, a.attidentity as identity, a.attgenerated as generated
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') and a.attnum > 0 and not a.attisdropped`, [schema])
  const indexes = await client.query(`select c.relname as rel, i.relname as name, pg_catalog.pg_get_indexdef(x.indexrelid) as def
    from pg_catalog.pg_index x
    join pg_catalog.pg_class i on i.oid = x.indexrelid
    join pg_catalog.pg_class c on c.oid = x.indrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1`, [schema])
  const constraints = await client.query(`select coalesce(c.relname, '') as rel, k.conname as name, pg_catalog.pg_get_constraintdef(k.oid) as def
    from pg_catalog.pg_constraint k
    join pg_catalog.pg_namespace n on n.oid = k.connamespace
    left join pg_catalog.pg_class c on c.oid = k.conrelid
    where n.nspname = $1`, [schema])
  const strip = schemaStripper(schema)
  const lines = [
    ...relations.rows.map((r) => `relation ${r.name} ${r.kind}`),
    ...columns.rows.map((r) => `column ${r.rel}.${r.name} ${r.type}${r.not_null === true ? ' not null' : ''}${r.def === null ? '' : ` default ${strip(r.def)}`}${r.identity === '' ? '' : ` identity ${r.identity}`}${r.generated === '' ? '' : ` generated ${r.generated}`}`),
    ...indexes.rows.map((r) => `index ${r.rel}.${r.name} ${strip(r.def)}`),
    ...constraints.rows.map((r) => `constraint ${r.rel}.${r.name} ${strip(r.def)}`)
  ]
  return lines.sort()
}

/** The SHA-256 of a catalog's lines. */
export function catalogChecksum (lines: readonly string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}

/** What is in one catalog and not the other: `+ line` (only in `actual`) and `- line` (only in `expected`). */
export function catalogDifferences (expected: readonly string[], actual: readonly string[]): string[] {
  const want = new Set(expected)
  const have = new Set(actual)
  return [...actual.filter((l) => !want.has(l)).map((l) => `+ ${l}`), ...expected.filter((l) => !have.has(l)).map((l) => `- ${l}`)]
}

/** Takes `schema.` and `"schema".` out of a definition (names are checked `^[a-z0-9_]+$`, so no regexp character needs escaping). */
function schemaStripper (schema: string): (text: string) => string {
  const qualified = new RegExp(`(?:"${schema}"|\\b${schema})\\.`, 'g')
  return (text) => text.replace(qualified, '')
}
