import { misuse } from '../misuse.js'
import { CentralUserEntity } from '../entities/central/user.entity.js'
import { TENANT_USERS_PIVOT } from '../entities/central/tenant-user.entity.js'

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/

/** Quotes a column or table name taken from metadata or options. */
export function ident (name: string): string {
  if (!IDENT.test(name)) throw misuse.badSyncIdentifier(name)
  return `"${name}"`
}

/**
 * Which tenants have a resource: its own pivot table (`tenant_users`), or a
 * table shared by several resources with a resource-type column (the shipped
 * `tenant_resources`, like Tenancy for Laravel v4's).
 */
export interface SyncMapping {
  table: string
  /** The table's schema (default: the schema of the resource's central table). */
  schema?: string
  tenantColumn: string
  globalIdColumn: string
  /** For a shared mapping table: the column holding the resource type. */
  typeColumn?: string
  /** The value of `typeColumn` for this resource (default: the resource's name). */
  type?: string
}

/** The shipped shared mapping table, used by resources that declare no mapping. */
export const SHARED_MAPPING: SyncMapping = { table: 'tenant_resources', tenantColumn: 'tenant_key', globalIdColumn: 'global_id', typeColumn: 'resource_type' }

/** Default mappings carried by central entities (an entity module declares its own pivot next to it). */
const entityMappings = new WeakMap<object, SyncMapping>()

/** Declares the mapping a resource uses by default when its central entity is `entity`. */
export function defaultMapping (entity: object, mapping: SyncMapping): void {
  entityMappings.set(entity, mapping)
}

export function defaultMappingOf (entity: object): SyncMapping | undefined {
  return entityMappings.get(entity)
}

// The shipped users entity syncs through its own pivot.
defaultMapping(CentralUserEntity, TENANT_USERS_PIVOT)

/** A checked mapping with its SQL pieces. */
export class ResolvedMapping {
  readonly table: string
  /** The table as SQL names it (quoted, qualified when it has a schema). */
  private readonly sql: string
  readonly tenantColumn: string
  readonly globalIdColumn: string
  readonly typeColumn: string | null
  readonly type: string

  constructor (mapping: SyncMapping, resourceName: string) {
    this.table = mapping.table
    this.sql = mapping.schema === undefined ? ident(mapping.table) : `${ident(mapping.schema)}.${ident(mapping.table)}`
    this.tenantColumn = mapping.tenantColumn
    this.globalIdColumn = mapping.globalIdColumn
    this.typeColumn = mapping.typeColumn ?? null
    this.type = mapping.type ?? resourceName
    ident(this.tenantColumn); ident(this.globalIdColumn)
    if (this.typeColumn !== null) ident(this.typeColumn)
  }

  /** `where` for one global id (and this resource's type on a shared table); bindings follow. */
  private where (alias = ''): string {
    const a = alias === '' ? '' : `${alias}.`
    return `${a}${ident(this.globalIdColumn)} = ?` + (this.typeColumn === null ? '' : ` and ${a}${ident(this.typeColumn)} = ?`)
  }

  private bind (globalId: string): unknown[] {
    return this.typeColumn === null ? [globalId] : [globalId, this.type]
  }

  tenantsSql (globalId: string): [string, unknown[]] {
    return [`select ${ident(this.tenantColumn)}::text as key from ${this.sql} where ${this.where()} order by 1`, this.bind(globalId)]
  }

  /** An `exists(...)` telling whether tenant `?` has the global id of the outer query's `outer.column`. */
  existsSql (outer: string, column: string): string {
    const type = this.typeColumn === null ? '' : ` and m.${ident(this.typeColumn)} = ?`
    return `exists (select 1 from ${this.sql} m where m.${ident(this.tenantColumn)}::text = ? and m.${ident(this.globalIdColumn)} = ${outer}.${ident(column)}${type})`
  }

  existsBind (tenantKey: string): unknown[] {
    return this.typeColumn === null ? [tenantKey] : [tenantKey, this.type]
  }

  insertSql (tenantKey: string, globalId: string): [string, unknown[]] {
    const cols = [this.tenantColumn, this.globalIdColumn, ...(this.typeColumn === null ? [] : [this.typeColumn])]
    return [`insert into ${this.sql} (${cols.map(ident).join(', ')}) values (${cols.map(() => '?').join(', ')}) on conflict do nothing returning 1 as n`,
      [tenantKey, globalId, ...(this.typeColumn === null ? [] : [this.type])]]
  }

  deleteSql (tenantKey: string, globalId: string): [string, unknown[]] {
    return [`delete from ${this.sql} where ${ident(this.tenantColumn)}::text = ? and ${this.where()} returning 1 as n`, [tenantKey, ...this.bind(globalId)]]
  }

  deleteAllSql (globalId: string): [string, unknown[]] {
    return [`delete from ${this.sql} where ${this.where()}`, this.bind(globalId)]
  }

  /** The global ids one tenant has in this mapping (what an export of the tenant carries). */
  globalIdsSql (tenantKey: string): [string, unknown[]] {
    return [`select ${ident(this.globalIdColumn)}::text as global_id from ${this.sql} where ${ident(this.tenantColumn)}::text = ?` + (this.typeColumn === null ? '' : ` and ${ident(this.typeColumn)} = ?`) + ' order by 1',
      this.typeColumn === null ? [tenantKey] : [tenantKey, this.type]]
  }

  /** Forgets a tenant (it was deleted): every row of it in this mapping. */
  forgetTenantSql (tenantKey: string): [string, unknown[]] {
    return [`delete from ${this.sql} where ${ident(this.tenantColumn)}::text = ?` + (this.typeColumn === null ? '' : ` and ${ident(this.typeColumn)} = ?`),
      this.typeColumn === null ? [tenantKey] : [tenantKey, this.type]]
  }
}
