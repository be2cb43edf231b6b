import type pg from 'pg'
import { quoteAny } from './replication.js'

/** A sequence's position: its last value given out (null: none yet). */
export interface SequenceValue {
  schema: string
  name: string
  lastValue: string | null
}

/** Every sequence of the tenant's tables (in `schema`, or every schema of the database) and its last value. */
export async function readSequences (client: pg.ClientBase, schema: string | null): Promise<SequenceValue[]> {
  const { rows } = await client.query<{ schema: string, name: string, last_value: string | null }>(`
    select schemaname as schema, sequencename as name, last_value::text as last_value from pg_sequences
     where schemaname not in ('pg_catalog', 'information_schema') and ($1::text is null or schemaname = $1)
     order by 1, 2`, [schema])
  return rows.map((r) => ({ schema: r.schema, name: r.name, lastValue: r.last_value }))
}

/**
 * Carries sequence positions over: logical replication copies rows, not
 * sequences, so without this the target would hand out ids the source gave
 * out already. A sequence never used stays as it is, and none goes back (an
 * ascending one down, a descending one up): a target other tenants use too
 * (the shared tables, on a consolidate) may be past the source already.
 */
export async function writeSequences (client: pg.ClientBase, values: readonly SequenceValue[]): Promise<void> {
  const used = values.filter((s) => s.lastValue !== null)
  if (used.length === 0) return
  // One statement for them all: this runs while the tenant's requests are held.
  // Forward is up for an ascending sequence, down for a descending one.
  const one = (i: number): string => {
    const seq = `$${2 * i + 1}::regclass`
    const value = `$${2 * i + 2}::bigint`
    const now = `coalesce(pg_sequence_last_value(${seq}), ${value})`
    return `setval(${seq}, case when (select seqincrement from pg_sequence where seqrelid = ${seq}) > 0 then greatest(${value}, ${now}) else least(${value}, ${now}) end, true)`
  }
  await client.query(`select ${used.map((_, i) => one(i)).join(', ')}`,
    used.flatMap((s) => [`${quoteAny(s.schema)}.${quoteAny(s.name)}`, s.lastValue]))
}
