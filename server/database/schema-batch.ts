import type pg from 'pg'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Migration } from '@mikro-orm/migrations'
import { quoteIdent } from './names.js'
import { TENANT_MIGRATIONS_TABLE, migrationName, type SetList } from './migration-runner.js'
import type { TenantMigrationEntry } from './migration-sets.js'

/** One schema tenant's outcome in a batch. */
export interface BatchResult {
  ok: boolean
  /** The migrations it ran (on a failure, those that committed before it). */
  migrations: string[]
  error?: Error
}

export interface SchemaBatchParts {
  /** An ORM of the host: it makes the migration instances (their driver and configuration); it runs nothing while they are asked for their SQL. */
  orm: MikroORM
  /** A plain connection to the host's database that the batch's text is sent on. */
  client: pg.ClientBase
  /** Turns on and off the refusal of any statement the ORM would send (a migration that runs SQL while it is asked for its SQL). */
  collecting: (on: boolean) => void
}

interface Planned {
  schema: string
  /** The tenant's transactions, as they would run one by one. */
  text: string
  /** The migrations the text records, in order. */
  expect: string[]
}

/**
 * Migrates many schema tenants of one host in one round trip: each tenant's
 * pending migrations as the runner would run them (the same SQL, its
 * transactions, its rows in the tenant's `fastify_tenancy_migrations`),
 * one tenant after another in one text. PostgreSQL stops at the first
 * failing statement; what committed before it is read back, the failing
 * tenant gets the error, and the tenants after it are sent again. A tenant
 * whose migrations cannot be sent this way (a migration that runs SQL in
 * `up()`, one that is not transactional, a schema without the migrations
 * table) is left out of the returned map: the caller runs it on its own.
 */
export async function runSchemaBatch (parts: SchemaBatchParts, schemas: readonly string[], lists: readonly SetList[]): Promise<Map<string, BatchResult>> {
  const results = new Map<string, BatchResult>()
  const executed = await readExecuted(parts.client, schemas)
  if (executed === null) return results
  let queue: Planned[] = []
  for (const schema of schemas) {
    const plan = await planFor(parts, schema, executed.get(schema) ?? new Set(), lists)
    if (plan === null) continue
    if (plan.expect.length === 0) results.set(schema, { ok: true, migrations: [] })
    else queue.push(plan)
  }
  while (queue.length > 0) {
    try {
      await parts.client.query(queue.map((p) => p.text).join('\n'))
      for (const p of queue) results.set(p.schema, { ok: true, migrations: p.expect })
      return results
    } catch (error) {
      await parts.client.query('rollback')
      const after = await readExecuted(parts.client, queue.map((p) => p.schema))
      if (after === null) throw error
      const failed = queue.findIndex((p) => !p.expect.every((name) => after.get(p.schema)?.has(name) === true))
      for (const p of queue.slice(0, failed === -1 ? queue.length : failed)) results.set(p.schema, { ok: true, migrations: p.expect })
      if (failed === -1) return results
      const bad = queue[failed] as Planned
      results.set(bad.schema, { ok: false, migrations: bad.expect.filter((name) => after.get(bad.schema)?.has(name) === true), error: error as Error })
      queue = queue.slice(failed + 1)
    }
  }
  return results
}

/** The migrations each schema has run; null when one of them has no migrations table (or no schema): those go one by one. */
async function readExecuted (client: pg.ClientBase, schemas: readonly string[]): Promise<Map<string, Set<string>> | null> {
  const out = new Map<string, Set<string>>(schemas.map((s) => [s, new Set()]))
  if (schemas.length === 0) return out
  const union = schemas.map((s, i) => `select ${i} as i, name, id from ${quoteIdent(s)}.${quoteIdent(TENANT_MIGRATIONS_TABLE)}`).join(' union all ')
  let rows: Array<{ i: number, name: string }>
  try {
    rows = (await client.query<{ i: number, name: string }>(`select i, name from (${union}) x order by i, id`)).rows
  } catch (error) {
    const code = (error as { code?: string }).code
    // An undefined table or schema: the runner's own path makes the table, or names what is missing.
    if (code === '42P01' || code === '3F000') return null
    throw error
  }
  for (const r of rows) out.get(schemas[r.i] as string)?.add(migrationName(r.name))
  return out
}

/** A schema's pending migrations as one text of transactions; null when one of them cannot go in a text. */
async function planFor (parts: SchemaBatchParts, schema: string, done: ReadonlySet<string>, lists: readonly SetList[]): Promise<Planned | null> {
  const table = `${quoteIdent(schema)}.${quoteIdent(TENANT_MIGRATIONS_TABLE)}`
  const transactions: string[][] = []
  const expect: string[] = []
  for (const { set, migrations } of lists) {
    const pending = migrations.filter((m) => !done.has(m.name))
    if (pending.length === 0) continue
    if (!set.transactional) return null
    let group: string[] = []
    for (const entry of pending) {
      const queries = await sqlOf(parts, schema, entry, set.disableForeignKeys)
      if (queries === null) return null
      group.push(...queries, `insert into ${table} (name) values (${literal(entry.name)})`)
      expect.push(entry.name)
      if (!set.allOrNothing) { transactions.push(group); group = [] }
    }
    if (group.length > 0) transactions.push(group)
  }
  // Each statement ends on a line of its own: a query that ends in a -- comment cannot swallow the semicolon.
  const text = transactions.map((statements) =>
    ['begin', `set local search_path to ${quoteIdent(schema)}, pg_temp`, ...statements, 'commit'].map((q) => `${q}\n;`).join('\n')).join('\n')
  return { schema, text, expect }
}

/** What a migration's `up()` adds, with the runner's framing (names, foreign keys); null when it runs SQL itself, or is not transactional. */
async function sqlOf (parts: SchemaBatchParts, schema: string, entry: TenantMigrationEntry, disableForeignKeys: boolean | undefined): Promise<string[] | null> {
  const MigrationClass = entry.class as unknown as new (...args: unknown[]) => Migration
  const migration = new MigrationClass(parts.orm.em.getDriver(), parts.orm.config)
  if (!migration.isTransactional()) return null
  // What a migration reads as this.config.get('schema'), as it would on its own.
  parts.orm.config.set('schema', schema)
  migration.reset()
  parts.collecting(true)
  try {
    await migration.up()
  } catch {
    return null
  } finally {
    parts.collecting(false)
  }
  const helper = parts.orm.em.getDriver().getPlatform().getSchemaHelper()
  const queries = [
    ...(helper?.getSchemaBeginning(parts.orm.config.get('charset'), disableForeignKeys) ?? '').split('\n'),
    ...migration.getQueries(),
    ...(helper?.getSchemaEnd(disableForeignKeys) ?? '').split('\n')
  ].filter((q) => typeof q !== 'string' || q.trim().length > 0)
  if (queries.some((q) => typeof q !== 'string')) return null
  return queries as string[]
}

function literal (text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}
