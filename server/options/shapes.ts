import { Type, type TUnsafe } from '@sinclair/typebox'

// Some options hold values JSON Schema cannot describe: functions, MikroORM
// entity schemas, a MikroORM instance. They are still checked, by shape (what
// the code will call on them), through the `shape` keyword the validator
// registers; `instanceof` would fail when the app has its own copy of a package.

function isObject (value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null
}

/** The structural checks behind the `shape` keyword, by name. */
export const shapeChecks = {
  function: (value: unknown): boolean => typeof value === 'function',
  entitySchema: (value: unknown): boolean =>
    isObject(value) && typeof value.init === 'function' && isObject(value.meta) && typeof value.meta.className === 'string',
  mikroOrm: (value: unknown): boolean =>
    isObject(value) && isObject(value.em) && typeof value.em.fork === 'function' && isObject(value.config) &&
    typeof value.config.get === 'function' && typeof value.getMetadata === 'function' && typeof value.close === 'function'
} satisfies Record<string, (value: unknown) => boolean>

export type ShapeName = keyof typeof shapeChecks

/** A value checked by shape, typed as `T`; `problem` says what it must be. */
export function Shape<T> (shape: ShapeName, problem: string): TUnsafe<T> {
  return Type.Unsafe<T>({ shape, problem })
}
