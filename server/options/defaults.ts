import { Type, type Static, type TObject, type TOptional, type TProperties, type TSchema, type TUnion } from '@sinclair/typebox'

// A default lives next to its option in the schema (`Default(schema, value)`),
// and the resolved type follows from it: an option with a default is always
// set after resolveOptions, one whose default is `null` is `T | null`.

// Type-only brand carrying the default's type (TypeBox types `default` as any).
declare const defaultType: unique symbol

/** An optional option and the value it takes when not given. */
export type TDefault<T extends TSchema, D> = TOptional<T> & { [defaultType]: D }

/** Makes `schema` optional, filled with `value` when not given (`null` for "none"). */
export function Default<T extends TSchema> (schema: T, value: null): TDefault<T, null>
export function Default<T extends TSchema> (schema: T, value: Static<T>): TDefault<T, Static<T>>
export function Default (schema: TSchema, value: unknown): TSchema {
  return Object.assign(Type.Optional(schema), { default: value })
}

/** The type of an option after defaults are applied. */
export type Resolved<S extends TSchema> =
  S extends TObject<infer P> ? ResolvedObject<P>
    : S extends TUnion<infer M> ? { [I in keyof M]: M[I] extends TSchema ? Resolved<M[I]> : never }[number]
      : Static<S>

type ResolvedObject<P extends TProperties> = { [K in keyof P]: ResolvedField<P[K]> }

type ResolvedField<S extends TSchema> =
  S extends { [defaultType]: infer D } ? (null extends D ? Resolved<S> | null : Resolved<S>)
    : S extends TOptional<TSchema> ? Resolved<S> | undefined
      : Resolved<S>

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A fresh copy of a default, so no caller shares the schema's arrays or objects (their items, such as entity schemas, are kept). */
function copy (value: unknown): unknown {
  if (Array.isArray(value)) return value.slice()
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]))
  return value
}

/**
 * Fills in the defaults of a valid value, without changing it: plain objects
 * are copied, everything else (functions, entity schemas, arrays given by the
 * app) is kept as given.
 */
export function applyDefaults (schema: TSchema, value: unknown): unknown {
  if (value === undefined && 'default' in schema) value = copy(schema.default)
  if (!isPlainObject(value)) return value
  const objectSchema = schema.type === 'object' && schema.properties !== undefined
    ? schema
    : (schema.anyOf as TSchema[] | undefined)?.find((member) => member.type === 'object' && member.properties !== undefined)
  if (objectSchema === undefined) return value
  const result: Record<string, unknown> = { ...value }
  for (const [key, propertySchema] of Object.entries(objectSchema.properties as Record<string, TSchema>)) {
    const filled = applyDefaults(propertySchema, value[key])
    if (filled !== undefined) result[key] = filled
  }
  return result
}
