import type { EntityMetadata, EntitySchema } from '@mikro-orm/core'
import { MisconfigurationError } from '../errors.js'
import { defaultMappingOf, ident, ResolvedMapping, SHARED_MAPPING, type SyncMapping } from './mapping.js'
import { centralTablesIn, type CentralTables } from '../database/central-schema.js'

export { ident } from './mapping.js'

/**
 * A resource kept in sync between the central database and tenant databases
 * (Tenancy for Laravel's SyncMaster and Syncable, as one declaration).
 */
export interface SyncedResourceDefinition {
  /** A name for the resource, used in jobs, events and bookkeeping (`users`, `companies`). */
  name: string
  /** The central entity (the SyncMaster). */
  central: EntitySchema<any, any>
  /** The tenant entity (the Syncable). */
  tenant: EntitySchema<any, any>
  /** Property holding the global id, on both entities (default `globalId`). */
  globalId?: string
  /** Properties synced both ways; the others stay as each side has them. */
  attributes: string[]
  /**
   * Which tenants have the resource: its own pivot table, or a shared table
   * with a resource-type column. Default: the mapping its central entity
   * declares, else the shipped shared table `tenant_resources`.
   */
  mapping?: SyncMapping
  /** @deprecated the same as `mapping` (an own pivot table). */
  pivot?: SyncMapping
  /** Values for columns the other side lacks when a copy is made: central row from a tenant row, tenant row from the central row. */
  creationDefaults?: {
    central?: (source: Record<string, unknown>) => Record<string, unknown>
    tenant?: (source: Record<string, unknown>) => Record<string, unknown>
  }
  /**
   * Whether a row takes part in syncing (properties by name). False: saving
   * or deleting it changes nothing elsewhere, and attaching or detaching it
   * writes the mapping only, no tenant copy.
   */
  shouldSync?: (row: Record<string, unknown>) => boolean
}

/** One side of a resource, in database terms: table, global id column and column of each property. */
export interface ResourceSide {
  className: string
  /** The table's name, as the entity's metadata has it. */
  table: string
  /** The table as SQL names it: quoted, and qualified when the entity names its schema (our central `users`). */
  sql: string
  globalIdColumn: string
  /** Column of each synced attribute, in the order of `attributes`. */
  syncedColumns: string[]
  /** Every scalar column by property name (primary keys that the database generates left out). */
  columns: Map<string, string>
  /** The `deletedAt` column when the entity has one (soft deletes). */
  deletedAtColumn: string | null
}

/** A checked definition with the columns of both sides. */
export interface SyncedResource {
  name: string
  definition: SyncedResourceDefinition
  central: ResourceSide
  tenant: ResourceSide
  attributes: string[]
  mapping: ResolvedMapping
  /** Both sides have `deletedAt`: a central soft delete or restore reaches the copies. */
  softDeletes: boolean
  globalIdProperty: string
  /** Our central tables (versions, outbox, inbox) in SQL. */
  centralTables: CentralTables
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
  const sql = meta.schema === undefined || meta.schema === '*' ? ident(meta.tableName) : `${ident(meta.schema)}.${ident(meta.tableName)}`
  return { className: meta.className, table: meta.tableName, sql, globalIdColumn: gid, syncedColumns, columns, deletedAtColumn: columns.get('deletedAt') ?? null }
}

/**
 * Checks a definition against the entities' metadata (central from the
 * central ORM, tenant from a discovered tenant ORM). `centralSchema` holds our
 * central tables; a mapping table that names no schema sits beside the
 * resource's central table (our `tenant_users` beside our `users`, an app's
 * pivot beside its own table), and the shipped `tenant_resources` in the central schema.
 */
export function resolveResource (definition: SyncedResourceDefinition, centralMeta: EntityMetadata, tenantMeta: EntityMetadata, centralSchema: string): SyncedResource {
  if (!/^[a-z0-9_-]{1,63}$/.test(definition.name)) throw new MisconfigurationError(`A synced resource needs a name of 1 to 63 lowercase letters, digits, dashes or underscores, not "${definition.name}".`)
  if (!Array.isArray(definition.attributes) || definition.attributes.length === 0) throw new MisconfigurationError(`Synced resource "${definition.name}" lists no attributes.`)
  if (definition.shouldSync !== undefined && typeof definition.shouldSync !== 'function') throw new MisconfigurationError(`Synced resource "${definition.name}": shouldSync must be a function.`)
  const globalId = definition.globalId ?? 'globalId'
  const given = definition.mapping ?? definition.pivot ?? defaultMappingOf(definition.central) ?? SHARED_MAPPING
  const mappingSchema = given.schema ?? (given === SHARED_MAPPING ? centralSchema : centralMeta.schema === '*' ? undefined : centralMeta.schema)
  const mapping = new ResolvedMapping({ ...given, schema: mappingSchema }, definition.name)
  const central = side(centralMeta, globalId, definition.attributes, 'central')
  const tenant = side(tenantMeta, globalId, definition.attributes, 'tenant')
  return {
    name: definition.name,
    definition,
    central,
    tenant,
    attributes: definition.attributes,
    mapping,
    softDeletes: central.deletedAtColumn !== null && tenant.deletedAtColumn !== null,
    globalIdProperty: globalId,
    centralTables: centralTablesIn(centralSchema)
  }
}

/** A row of one side (columns) as properties by name, for `shouldSync` and creation defaults. */
export function asProperties (side: ResourceSide, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [prop, column] of side.columns) if (column in row) out[prop] = row[column]
  return out
}

/** Whether a row (properties by name) takes part in syncing. */
export function shouldSync (resource: SyncedResource, properties: Record<string, unknown>): boolean {
  return resource.definition.shouldSync === undefined || resource.definition.shouldSync(properties)
}
