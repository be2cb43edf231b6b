import { EntitySchema, type EntityProperty } from '@mikro-orm/core'
import { NoTenantContextError } from '../../errors.js'
import { TENANT_COLUMN } from './rls-sql.js'

/** Name of the tenant key property every shared tenant entity gets. */
export const TENANT_PROPERTY = 'tenantKey'
/** Name of the ORM filter that keeps reads, updates and deletes to the current tenant. */
export const TENANT_FILTER = 'fastifyTenancyTenant'

/**
 * The app's tenant entities as strategy `shared` maps them: the same names,
 * tables and properties, plus a hidden `tenantKey` (set from the tenant
 * context when an entity is created), a filter on by default that adds
 * `tenant_key = <current tenant>` to every find, count, update and delete, and
 * every unique declared on the entity made unique per tenant (a composite
 * unique with the tenant key first). The app's own entity objects are left
 * untouched (the same process may run the other strategies too); MikroORM
 * finds the copies by entity name, so `em.find(ProjectEntity)` keeps working.
 */
export function sharedTenantEntities (entities: Array<EntitySchema<any, any>>, keyOf: () => string | null): Array<EntitySchema<any, any>> {
  const requireKey = (what: string): string => {
    const key = keyOf()
    if (key === null) throw new NoTenantContextError(what)
    return key
  }
  return entities.map((schema) => {
    const src = schema.meta
    const uniques = [...(src.uniques ?? [])].map((u) => ({ ...u, properties: [TENANT_PROPERTY, ...toArray(u.properties)] }))
    const properties: Record<string, Partial<EntityProperty>> = {}
    for (const [name, prop] of Object.entries(src.properties as Record<string, EntityProperty>)) {
      const copy = { ...prop }
      if (copy.unique === true || typeof copy.unique === 'string') {
        uniques.push({ properties: [TENANT_PROPERTY, name] } as any)
        copy.unique = false
      }
      properties[name] = copy
    }
    properties[TENANT_PROPERTY] = {
      name: TENANT_PROPERTY,
      type: 'uuid',
      fieldName: TENANT_COLUMN,
      hidden: true,
      onCreate: () => requireKey(`Creating a ${src.className}`)
    } as Partial<EntityProperty>
    return new EntitySchema({
      name: src.className,
      tableName: src.tableName,
      properties: properties as any,
      uniques: uniques as any,
      indexes: [{ properties: [TENANT_PROPERTY] }, ...(src.indexes ?? [])] as any,
      hooks: src.hooks,
      filters: {
        ...src.filters,
        [TENANT_FILTER]: {
          name: TENANT_FILTER,
          default: true,
          // No declared parameter, so MikroORM asks for no filter arguments: the tenant comes from the context.
          cond: (..._args: unknown[]) => ({ [TENANT_PROPERTY]: requireKey(`Reading a ${src.className}`) })
        }
      }
    })
  })
}

function toArray<T> (value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}
