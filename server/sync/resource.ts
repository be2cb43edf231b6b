import type { EntityMetadata, EntitySchema } from '@mikro-orm/core'
import { MisconfigurationError } from '../errors.js'

/**
 * A resource kept in sync between the central database and tenant databases
 * (Tenancy for Laravel's SyncMaster and Syncable, as one declaration).
 */
export interface SyncedResourceDefinition {
  /** A name for the resource, used in jobs and bookkeeping (`users`). */
  name: string
  /** The central entity (the SyncMaster). */
  central: EntitySchema<any, any>
  /** The tenant entity (the Syncable). */
  tenant: EntitySchema<any, any>
  /** Property holding the global id, on both entities (default `globalId`). */
  globalId?: string
  /** Properties synced both ways; the others stay as each side has them. */
  attributes: string[]
  /** The pivot table that says which tenants have the resource. */
  pivot?: { table: string, tenantColumn: string, globalIdColumn: string }
  /** Values for columns the other side lacks when a copy is made: central row from a tenant row, tenant row from the central row. */
  creationDefaults?: {
    central?: (source: Record<string, unknown>) => Record<string, unknown>
    tenant?: (source: Record<string, unknown>) => Record<string, unknown>
  }
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/

/** Quotes a column or table name taken from metadata or options. */
export function ident (name: string): string {
  if (!IDENT.test(name)) throw new MisconfigurationError(`"${name}" cannot be used as a table or column name by resource syncing.`)
  return `"${name}"`
}

/** One side of a resource, in database terms: table, global id column and column of each property. */
export interface ResourceSide {
  className: string
  table: string
  globalIdColumn: string
  /** Column of each synced attribute, in the order of `attributes`. */
  syncedColumns: string[]
  /** Every scalar column by property name (primary keys that the database generates left out). */
  columns: Map<string, string>
}

/** A checked definition with the columns of both sides. */
export interface SyncedResource {
  name: string
  definition: SyncedResourceDefinition
  central: ResourceSide
  tenant: ResourceSide
  attributes: string[]
  pivot: { table: string, tenantColumn: string, globalIdColumn: string }
}

function side (meta: EntityMetadata, globalId: string, attributes: string[], which: string): ResourceSide {
  const columns = new Map<string, string>()
  for (const prop of Object.values(meta.properties)) {
    if (prop.kind !== 'scalar' || prop.persist === false || prop.formula !== undefined) continue
    if (prop.primary && prop.autoincrement !== false && (prop.type === 'integer' || prop.type === 'number' || prop.runtimeType === 'number')) continue
    const field = prop.fieldNames?.[0]
    if (field !== undefined) columns.set(prop.name, field)
  }
  const gid = columns.get(globalId)
  if (gid === undefined) throw new MisconfigurationError(`The ${which} entity ${meta.className} has no property "${globalId}" for the global id.`)
  const syncedColumns = attributes.map((a) => {
    const c = columns.get(a)
    if (c === undefined) throw new MisconfigurationError(`The ${which} entity ${meta.className} has no synced attribute "${a}".`)
    return c
  })
  return { className: meta.className, table: meta.tableName, globalIdColumn: gid, syncedColumns, columns }
}

/** Checks a definition against the entities' metadata (central from the central ORM, tenant from a discovered tenant ORM). */
export function resolveResource (definition: SyncedResourceDefinition, centralMeta: EntityMetadata, tenantMeta: EntityMetadata): SyncedResource {
  if (!/^[a-z0-9_-]{1,63}$/.test(definition.name)) throw new MisconfigurationError(`A synced resource needs a name of 1 to 63 lowercase letters, digits, dashes or underscores, not "${definition.name}".`)
  if (!Array.isArray(definition.attributes) || definition.attributes.length === 0) throw new MisconfigurationError(`Synced resource "${definition.name}" lists no attributes.`)
  const globalId = definition.globalId ?? 'globalId'
  const pivot = definition.pivot ?? { table: 'tenant_users', tenantColumn: 'tenant_key', globalIdColumn: 'global_user_id' }
  ident(pivot.table); ident(pivot.tenantColumn); ident(pivot.globalIdColumn)
  return {
    name: definition.name,
    definition,
    central: side(centralMeta, globalId, definition.attributes, 'central'),
    tenant: side(tenantMeta, globalId, definition.attributes, 'tenant'),
    attributes: definition.attributes,
    pivot
  }
}
