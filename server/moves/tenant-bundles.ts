import type { Readable, Writable } from 'node:stream'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import type { Tenant } from '../tenant.js'
import type { DatabaseStrategy } from '../database/strategy.js'
import type { TargetOf } from '../database/tenant-targets.js'
import { ownerUrlOf } from '../database/tenant-target.js'
import type { ResolvedSharedOptions } from '../database/shared/shared-options.js'
import type { CreateTenantInput } from '../lifecycle/tenant-input.js'
import { NOT_TENANT_TABLES, TENANT_COLUMN } from '../database/shared/rls-sql.js'
import { IdentifierTakenError, InvalidBundleError, TenantNotFoundError } from '../errors.js'
import { misuse } from '../misuse.js'
import { BundleWriter, readBundle, type BundleManifest, type BundleTable } from './bundle-format.js'
import { literal, quoteAny, tenantTables } from './replication.js'
import { referencedFirst } from './copy-tables.js'
import { checkVersion, executedMigrations, makeTargetAt } from './target-schema.js'
import type { TenantMigrator } from '../database/tenant-migrator.js'
import type { BundleResources, ResourceRestore } from './bundle-resources.js'

export interface BundleParts {
  /** The tenant migrations (ours and the app's): an import is made at the bundle's version. */
  migrator: Pick<TenantMigrator, 'names' | 'up'>
  strategy: Pick<DatabaseStrategy, 'kind' | 'target' | 'exists' | 'create' | 'drop'>
  targetOf: TargetOf
  hosts: Record<string, string>
  defaultHost: string
  shared: ResolvedSharedOptions | null
  /** A tenant's domains, the primary first. */
  domainsOf: (tenantKey: string) => Promise<Array<{ domain: string, primary: boolean }>>
  find: (identifierOrKey: string) => Promise<Tenant | null>
  /** Creates the tenant's central row over restored rows (the provisioning steps run, the seeder does not). */
  create: (input: CreateTenantInput & { key: string, adopt: true, restoring: true }) => Promise<Tenant>
  /** The tenant's synced resources and their mapping rows, read and mapped again. */
  resources: BundleResources
}

/** What an import made: the tenant, and its synced resources mapped again (those that could not be, listed). */
export interface ImportResult {
  tenant: Tenant
  resources: ResourceRestore
}

export interface ImportOptions {
  /** Import under this identifier, with a new key (the original may still exist); its domains are left out. */
  as?: string
  /** The database host (default: `database.defaultHost`). */
  host?: string
}

/** One table's rows in one tenant: how many, and an md5 of them all. */
export interface TableSum { rows: number, checksum: string }

/** One table of two tenants compared (null: the tenant has no such table). */
export interface TableComparison { table: string, a: TableSum | null, b: TableSum | null, equal: boolean }

/** Where a tenant's rows are read or written: a connection URL, the schema of its tables, and (strategy shared) the tenant key that marks its rows. */
interface Place { url: string, schema: string, key: string | null }

async function connect (url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'fastify-tenancy:bundle' })
  client.on('error', () => {})
  await client.connect()
  return client
}

async function columnsOf (client: pg.ClientBase, qualified: string, shared: boolean): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('select attname as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = \'\' order by attnum', [qualified])
  return rows.map((r) => r.name).filter((name) => !shared || name !== TENANT_COLUMN)
}

/**
 * Export and import of one tenant (see docs/operations.md, "Export and import of one
 * tenant"). An export reads every table in one REPEATABLE READ transaction,
 * so the bundle is one consistent snapshot while the tenant keeps working.
 */
export class TenantBundles {
  constructor (private readonly parts: BundleParts) {}

  async export (name: string, out: Writable): Promise<BundleManifest> {
    const tenant = await this.parts.find(name)
    if (tenant === null) throw new TenantNotFoundError(name)
    const place = this.placeOf(tenant.key, tenant)
    const shared = place.key !== null
    const domains = (await this.parts.domainsOf(tenant.key)).map((d) => ({ domain: d.domain, primary: d.primary }))
    const client = await connect(place.url)
    try {
      await client.query('begin isolation level repeatable read read only')
      const migrations = await executedMigrations(client, place.schema === 'public' ? null : place.schema)
      // The data's snapshot is taken (its first query); the mapping rows are read in a central snapshot right after.
      const resources = await this.parts.resources.read(tenant.key)
      const tables = (await tenantTables(client, place.schema)).filter((t) => !shared || !NOT_TENANT_TABLES.has(t.table))
      const sequences: BundleManifest['sequences'] = []
      const described: Array<{ table: BundleTable, quoted: string }> = []
      for (const t of tables) {
        const columns = await columnsOf(client, t.quoted, shared)
        described.push({ table: { name: t.table, columns }, quoted: t.quoted })
        for (const column of columns) {
          const seq = (await client.query<{ seq: string | null }>('select pg_get_serial_sequence($1, $2) as seq', [t.quoted, column])).rows[0]?.seq ?? null
          if (seq === null) continue
          const { rows: [s] } = await client.query<{ last_value: string, is_called: boolean }>(`select last_value::text, is_called from ${seq}`)
          sequences.push({ table: t.table, column, lastValue: s?.is_called === true ? s.last_value : null })
        }
      }
      const manifest: BundleManifest = {
        format: 1,
        exportedAt: new Date().toISOString(),
        strategy: this.parts.strategy.kind,
        migrations,
        tenant: {
          key: tenant.key,
          identifier: tenant.identifier,
          resourceKey: tenant.resourceKey ?? null,
          name: tenant.name,
          status: tenant.status,
          data: tenant.data ?? {}
        },
        domains,
        sequences,
        resources
      }
      const writer = new BundleWriter(out)
      await writer.manifest(manifest)
      for (const { table, quoted } of described) {
        const select = `select ${table.columns.map(quoteAny).join(', ')} from ${quoted}${shared ? ` where ${TENANT_COLUMN} = ${literal(tenant.key)}` : ''}`
        await writer.table(table, client.query(copyTo(`copy (${select}) to stdout`)))
      }
      await writer.end()
      await client.query('commit')
      return manifest
    } finally {
      await client.end().catch(() => {})
    }
  }

  /**
   * Imports a bundle as a new tenant: its rows into a database (or schema, or
   * the shared tables) of this app's strategy at the bundle's migrations, then
   * the tenant is created over them and migrated to the newest. A bundle from
   * a newer schema is refused before anything is written; a failure undoes
   * what was written.
   */
  async import (input: Readable, options: ImportOptions = {}): Promise<Tenant> {
    return (await this.restore(input, options)).tenant
  }

  /** {@link import}, telling also which synced resources were mapped again and which could not be. */
  async restore (input: Readable, options: ImportOptions = {}): Promise<ImportResult> {
    const { strategy, hosts } = this.parts
    const host = options.host ?? this.parts.defaultHost
    if (hosts[host] === undefined) throw misuse.unknownDatabaseHost(host)
    let manifest: BundleManifest | null = null
    let key = ''
    let client: pg.Client | null = null
    let place: Place | null = null
    const staged: Array<{ table: BundleTable, temp: string }> = []
    let made = false
    try {
      await readBundle(input, async (m) => {
        manifest = m
        await checkVersion(this.parts.migrator, m.migrations)
        const identifier = options.as ?? m.tenant.identifier
        if (await this.parts.find(identifier) !== null) throw new IdentifierTakenError(identifier)
        key = options.as === undefined ? m.tenant.key : uuidv7()
        if (await this.parts.find(key) !== null) throw new InvalidBundleError(`a tenant with its key ${key} exists here already; import it under a new identifier (--as)`)
        place = this.placeOf(key, { key, databaseHost: host })
        if (strategy.kind !== 'shared') {
          await makeTargetAt(strategy, this.parts.migrator, this.parts.targetOf({ key, databaseHost: host }), m.migrations)
          made = true
        }
        client = await connect(place.url)
        await client.query('begin')
        // Rows go in as they were, without triggers or foreign key checks (the source had them), where the role may.
        if (strategy.kind !== 'shared') {
          await client.query('savepoint replica')
          await client.query('set local session_replication_role = replica').then(
            async () => await client?.query('release savepoint replica'),
            async () => await client?.query('rollback to savepoint replica'))
        }
      }, async (table, rows) => {
        const c = client as unknown as pg.Client
        const p = place as unknown as Place
        const qualified = `${quoteAny(p.schema)}.${quoteAny(table.name)}`
        let into = `${qualified} (${table.columns.map(quoteAny).join(', ')})`
        if (p.key !== null) {
          // Strategy shared: staged first, to be given this tenant's key and new ids.
          const temp = `fastify_tenancy_import_${staged.length}`
          await c.query(`create temp table ${temp} on commit drop as select ${table.columns.map(quoteAny).join(', ')} from ${qualified} with no data`)
          staged.push({ table, temp })
          into = temp
        }
        const sink = c.query(copyFrom(`copy ${into} from stdin`))
        const done = new Promise<void>((resolve, reject) => { sink.on('finish', resolve); sink.on('error', reject) })
        let chunk = ''
        for await (const row of rows) {
          chunk += row + '\n'
          if (chunk.length >= 65_536) {
            if (!sink.write(chunk)) await new Promise((resolve) => sink.once('drain', resolve))
            chunk = ''
          }
        }
        sink.end(chunk)
        await done
      })
      const m = manifest as unknown as BundleManifest
      const c = client as unknown as pg.Client
      const p = place as unknown as Place
      if (p.key !== null) await this.placeShared(c, p, staged)
      else await this.carrySequences(c, p, m)
      await c.query('commit')
      const tenant = await this.parts.create({
        key,
        identifier: options.as ?? m.tenant.identifier,
        name: m.tenant.name,
        data: m.tenant.data,
        domains: options.as === undefined ? m.domains.map((d) => d.domain) : [],
        databaseHost: host,
        adopt: true,
        restoring: true
      })
      // After the tenant exists: an attach takes its row's lock. Under --as, the new key gets mappings of its own.
      return { tenant, resources: await this.parts.resources.restore(m.resources ?? [], tenant) }
    } catch (error) {
      await (client as pg.Client | null)?.query('rollback').catch(() => {})
      if (made && await this.parts.find(key) === null) await strategy.drop(this.parts.targetOf({ key, databaseHost: host })).catch(() => {})
      if (strategy.kind === 'shared' && key !== '' && await this.parts.find(key) === null) await strategy.drop(this.parts.targetOf({ key, databaseHost: host })).catch(() => {})
      throw error
    } finally {
      await (client as pg.Client | null)?.end().catch(() => {})
    }
  }

  /**
   * Each tenant table's row count and checksum (md5 of its rows as text, in
   * order, the tenant key column of strategy shared left out) for two
   * tenants side by side: a restored copy against the tenant before a swap.
   */
  async compare (a: string, b: string): Promise<TableComparison[]> {
    const sides = await Promise.all([a, b].map(async (name) => {
      const tenant = await this.parts.find(name)
      if (tenant === null) throw new TenantNotFoundError(name)
      return await this.tableSums(tenant)
    }))
    const [left, right] = sides as [Map<string, TableSum>, Map<string, TableSum>]
    const names = [...new Set([...left.keys(), ...right.keys()])].sort()
    return names.map((table) => {
      const x = left.get(table) ?? null
      const y = right.get(table) ?? null
      return { table, a: x, b: y, equal: x !== null && y !== null && x.rows === y.rows && x.checksum === y.checksum }
    })
  }

  private async tableSums (tenant: Tenant): Promise<Map<string, TableSum>> {
    const place = this.placeOf(tenant.key, tenant)
    const shared = place.key !== null
    const client = await connect(place.url)
    try {
      await client.query('begin isolation level repeatable read read only')
      const out = new Map<string, TableSum>()
      for (const t of (await tenantTables(client, place.schema)).filter((t) => !shared || !NOT_TENANT_TABLES.has(t.table))) {
        const columns = await columnsOf(client, t.quoted, shared)
        const row = columns.length === 0 ? '\'\'' : `row(${columns.map(quoteAny).join(', ')})::text`
        const { rows: [sum] } = await client.query<{ n: string, sum: string }>(`select count(*)::text as n, md5(coalesce(string_agg(r, '|' order by r), '')) as sum from (select ${row} as r from ${t.quoted}${shared ? ` where ${TENANT_COLUMN} = ${literal(tenant.key)}` : ''}) x`)
        out.set(t.table, { rows: Number(sum?.n ?? 0), checksum: String(sum?.sum) })
      }
      await client.query('commit')
      return out
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** Where a tenant's rows are: its database or schema, or its rows of the shared tables or of its isolated database (through the role that may cross tenants). */
  private placeOf (key: string, tenant: Pick<Tenant, 'key' | 'databaseHost' | 'isolation'>): Place {
    const shared = this.parts.shared
    // An isolated tenant's database has the shared tables' shape: read it the same way, as its owner.
    if (this.parts.strategy.kind === 'shared' && shared !== null) {
      if (tenant.isolation == null) return { url: shared.centralUrl, schema: shared.schema, key }
      const target = this.parts.targetOf(tenant)
      return { url: ownerUrlOf(target), schema: target.schema ?? shared.schema, key }
    }
    const target = this.parts.targetOf(tenant)
    return { url: target.url, schema: target.schema ?? 'public', key: null }
  }

  /** Sequences go on after the larger of the source's last value and the highest imported value. */
  private async carrySequences (c: pg.ClientBase, p: Place, m: BundleManifest): Promise<void> {
    for (const s of m.sequences) {
      const qualified = `${quoteAny(p.schema)}.${quoteAny(s.table)}`
      const seq = (await c.query<{ seq: string | null }>('select pg_get_serial_sequence($1, $2) as seq', [qualified, s.column])).rows[0]?.seq ?? null
      if (seq === null) continue
      await c.query(`select setval($1::regclass, greatest(coalesce((select max(${quoteAny(s.column)}) from ${qualified}), 0), $2::bigint), true) where greatest(coalesce((select max(${quoteAny(s.column)}) from ${qualified}), 0), $2::bigint) > 0`, [seq, s.lastValue ?? '0'])
    }
  }

  /**
   * Strategy shared: the staged rows get the tenant's key and, for each
   * table whose primary key is one column with a sequence, new ids from it
   * (ids are unique across every tenant there, and the original may still
   * be there); foreign keys between the tenant's tables follow their rows.
   */
  private async placeShared (c: pg.ClientBase, p: Place, staged: Array<{ table: BundleTable, temp: string }>): Promise<void> {
    const byName = new Map(staged.map((s) => [s.table.name, s]))
    const renumbered = new Map<string, string>()
    for (const s of staged) {
      const qualified = `${quoteAny(p.schema)}.${quoteAny(s.table.name)}`
      const { rows: pk } = await c.query<{ column: string }>(`
        select a.attname as column from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
         where i.indrelid = $1::regclass and i.indisprimary and a.attname <> $2`, [qualified, TENANT_COLUMN])
      const column = pk.length === 1 ? pk[0]?.column : undefined
      if (column === undefined || !s.table.columns.includes(column)) continue
      const seq = (await c.query<{ seq: string | null }>('select pg_get_serial_sequence($1, $2) as seq', [qualified, column])).rows[0]?.seq ?? null
      if (seq === null) continue
      await c.query(`alter table ${s.temp} add column fastify_tenancy_new_id bigint`)
      await c.query(`update ${s.temp} set fastify_tenancy_new_id = nextval(${literal(seq)}::regclass)`)
      renumbered.set(s.table.name, column)
    }
    const { rows: fks } = await c.query<{ from_table: string, from_column: string, to_table: string, to_column: string }>(`
      select f.relname as from_table, fa.attname as from_column, t.relname as to_table, ta.attname as to_column
        from pg_constraint k
        join pg_class f on f.oid = k.conrelid join pg_namespace n on n.oid = f.relnamespace
        join pg_class t on t.oid = k.confrelid
        join lateral unnest(k.conkey, k.confkey) as u(fk, pk) on true
        join pg_attribute fa on fa.attrelid = k.conrelid and fa.attnum = u.fk
        join pg_attribute ta on ta.attrelid = k.confrelid and ta.attnum = u.pk
       where k.contype = 'f' and n.nspname = $1 and fa.attname <> $2`, [p.schema, TENANT_COLUMN])
    for (const fk of fks) {
      const from = byName.get(fk.from_table)
      const to = byName.get(fk.to_table)
      if (from === undefined || to === undefined || renumbered.get(fk.to_table) !== fk.to_column) continue
      await c.query(`update ${from.temp} f set ${quoteAny(fk.from_column)} = t.fastify_tenancy_new_id from ${to.temp} t where f.${quoteAny(fk.from_column)} = t.${quoteAny(fk.to_column)}`)
    }
    const ordered = await referencedFirst(c, staged.map((s) => ({ schema: p.schema, table: s.table.name, staged: s })))
    for (const { staged: s } of ordered) {
      const id = renumbered.get(s.table.name)
      const columns = s.table.columns.map(quoteAny)
      const values = s.table.columns.map((col) => col === id ? 'fastify_tenancy_new_id' : quoteAny(col))
      await c.query(`insert into ${quoteAny(p.schema)}.${quoteAny(s.table.name)} (${TENANT_COLUMN}, ${columns.join(', ')}) select ${literal(p.key as string)}::uuid, ${values.join(', ')} from ${s.temp}`)
    }
  }
}
