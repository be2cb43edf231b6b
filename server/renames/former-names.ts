import { Lru } from '../lru.js'
import type { SqlExecutor } from '../providers/provider.js'
import type { CentralTables } from '../database/central-schema.js'

/** A name a tenant had: an identifier (subdomain, path) or a whole domain. */
export type FormerNameKind = 'identifier' | 'domain'

export interface FormerName {
  kind: FormerNameKind
  name: string
  tenantKey: string
  renamedAt: Date
  /** Until then the old name redirects and no other tenant can take it. */
  expiresAt: Date
}

export interface FormerNamesOptions {
  execute: SqlExecutor
  /** The central tables' names in SQL. */
  tables: CentralTables
  /** The clock the expiry is judged by (tests move it instead of sleeping). */
  now: () => number
  /** How long a former name is kept, in ms. */
  keepMs: number
}

const MISS = Symbol('miss')
type Entry = FormerName | typeof MISS

/**
 * The names tenants had before a rename, read from `tenant_former_names`
 * (filled by database triggers on every rename, by whatever path). Lookups
 * are cached briefly: a hit only names the tenant's key (its current name
 * is read through the provider), and a miss is kept for a moment so unknown
 * names do not reach the database on every request.
 */
export class FormerNames {
  private readonly execute: SqlExecutor
  private readonly t: CentralTables
  private readonly now: () => number
  readonly keepMs: number
  private readonly cache = new Lru<string, Entry>({ max: 10_000, ttl: 500 })

  constructor (options: FormerNamesOptions) {
    this.execute = options.execute
    this.t = options.tables
    this.now = options.now
    this.keepMs = options.keepMs
  }

  /** Tells the database triggers how long a former name is kept (written at start; instances share one value). */
  async configure (): Promise<void> {
    await this.execute(
      `insert into ${this.t.fastify_tenancy_settings} (name, value) values ('renames.keep_ms', ?) on conflict (name) do update set value = excluded.value`,
      [String(this.keepMs)])
  }

  /** The tenant that had `name`, while the name still redirects; null otherwise. */
  async find (kind: FormerNameKind, name: string): Promise<FormerName | null> {
    const id = kind + '\u0000' + name
    let entry = this.cache.get(id)
    if (entry === undefined) {
      const rows = await this.execute(`select tenant_key, renamed_at, expires_at from ${this.t.tenant_former_names} where kind = ? and name = ?`, [kind, name])
      const row = rows[0]
      entry = row === undefined ? MISS : toFormerName(kind, name, row)
      this.cache.set(id, entry, { ttl: entry === MISS ? 500 : 5_000 })
    }
    if (entry === MISS || entry.expiresAt.getTime() <= this.now()) return null
    return entry
  }

  /** A tenant's former names that still redirect, newest first. */
  async of (tenantKey: string): Promise<FormerName[]> {
    const rows = await this.execute(`select kind, name, tenant_key, renamed_at, expires_at from ${this.t.tenant_former_names} where tenant_key = ? order by renamed_at desc, name`, [tenantKey])
    return rows.map((r) => toFormerName(r.kind as FormerNameKind, String(r.name), r)).filter((f) => f.expiresAt.getTime() > this.now())
  }

  /** Forgets cached lookups (tenants or domains changed). */
  invalidate (): void {
    this.cache.clear()
  }

  /** Forgets the cached lookups of the names one change touched (its old and new identifiers and domains). */
  forget (change: { identifiers: readonly string[], domains: readonly string[] }): void {
    for (const name of change.identifiers) this.cache.delete('identifier\u0000' + name)
    for (const name of change.domains) this.cache.delete('domain\u0000' + name)
  }
}

function toFormerName (kind: FormerNameKind, name: string, row: Record<string, unknown>): FormerName {
  return {
    kind,
    name,
    tenantKey: String(row.tenant_key),
    renamedAt: new Date(row.renamed_at as string),
    expiresAt: new Date(row.expires_at as string)
  }
}
