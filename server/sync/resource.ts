import type { EntityMetadata, EntitySchema } from '@mikro-orm/core'
import { misuse } from '../misuse.js'
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
  /**
   * Values for properties the other side lacks when a copy is made: `central`
   * makes the central row from a tenant's copy, `tenant` a tenant's copy from
   * the central row. Each gets the source row as a {@link SourceRow} and
   * returns values by property name of the side being made.
   */
  creationDefaults?: {
    central?: (source: SourceRow) => Record<string, unknown>
    tenant?: (source: SourceRow) => Record<string, unknown>
  }
  /**
   * Whether a row takes part in syncing, given as a {@link SourceRow} of the
   * side the change comes from. False: saving or deleting it changes nothing
   * elsewhere, and attaching or detaching it writes the mapping only, no
   * tenant copy; once a save makes it true, mapped tenants get their copies.
   */
  shouldSync?: (row: SourceRow) => boolean
}

/**
 * What `shouldSync` and `creationDefaults` receive: one side's row as a plain
 * object of its entity's scalar properties, by property name (`globalId`,
 * `deletedAt`), as stored. Properties only that side has are there too; a
 * primary key the database generates (a serial id, meaningless on the other
 * side) is not.
 */
export type SourceRow = Record<string, unknown>

/** One side of a resource, in database terms: table, global id column and column of each property. */
export interface ResourceSide {
  className: string
  table: string
  /** The table as SQL names it: quoted, and schema-qualified when the entity names a schema (central side). */
  sqlTable: string
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
  /** Our central tables (versions, inbox) in SQL. */
  centralTables: CentralTables
}

function side (meta: EntityMetadata, globalId: string, attributes: string[], which: 'central' | 'tenant'): ResourceSide {
  const columns = new Map<string, string>()
  for (const prop of Object.values(meta.properties)) {
    if (prop.kind !== 'scalar' || prop.persist === false || prop.formula !== undefined) continue
    if (prop.primary && prop.autoincrement !== false && (prop.type === 'integer' || prop.type === 'number' || prop.runtimeType === 'number')) continue
    const field = prop.fieldNames?.[0]
    if (field !== undefined) columns.set(prop.name, field)
  }
  const gid = columns.get(globalId)
  if (gid === undefined) throw misuse.syncNoGlobalId(which, meta.className, globalId)
  const syncedColumns = attributes.map((a) => {
    const c = columns.get(a)
    if (c === undefined) throw misuse.syncUnknownAttribute(which, meta.className, a)
    return c
  })
  // Tenant tables are named by each tenant's own search path (its database, schema or shared tables).
  const schema = which === 'central' && meta.schema !== undefined && meta.schema !== '*' ? meta.schema : null
  const sqlTable = schema === null ? ident(meta.tableName) : `${ident(schema)}.${ident(meta.tableName)}`
  return { className: meta.className, table: meta.tableName, sqlTable, globalIdColumn: gid, syncedColumns, columns, deletedAtColumn: columns.get('deletedAt') ?? null }
}

/**
 * Checks a definition against the entities' metadata (central from the
 * central ORM, tenant from a discovered tenant ORM). `centralSchema` holds our
 * central tables; a mapping table that names no schema sits beside the
 * resource's central table (our `tenant_users` beside our `users`, an app's
 * pivot beside its own table), and the shipped `tenant_resources` in the central schema.
 */
export function resolveResource (
  definition: SyncedResourceDefinition, centralMeta: EntityMetadata, tenantMeta: EntityMetadata, centralSchema: string
): SyncedResource {
  if (!/^[a-z0-9_-]{1,63}$/.test(definition.name)) throw misuse.badSyncResourceName(definition.name)
  if (!Array.isArray(definition.attributes) || definition.attributes.length === 0) throw misuse.syncResourceWithoutAttributes(definition.name)
  if (definition.shouldSync !== undefined && typeof definition.shouldSync !== 'function') throw misuse.shouldSyncNotFunction(definition.name)
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

/** A row of one side, read by column names, as a {@link SourceRow}. */
export function rowProperties (side: ResourceSide, row: Record<string, unknown>): SourceRow {
  const out: SourceRow = {}
  for (const [prop, column] of side.columns) if (column in row) out[prop] = row[column]
  return out
}

/** An entity of one side as a {@link SourceRow}. */
export function entityProperties (side: ResourceSide, entity: object): SourceRow {
  const out: SourceRow = {}
  for (const prop of side.columns.keys()) if (prop in entity) out[prop] = (entity as Record<string, unknown>)[prop]
  return out
}

/** Whether a row (a {@link SourceRow}) takes part in syncing. */
export function shouldSync (resource: SyncedResource, row: SourceRow): boolean {
  return resource.definition.shouldSync === undefined || resource.definition.shouldSync(row)
}
