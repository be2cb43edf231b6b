import { Ajv, type ErrorObject } from 'ajv'
import type { TSchema } from '@sinclair/typebox'
import { InvalidOptionError } from '../errors.js'
import { shapeChecks, type ShapeName } from './shapes.js'
import { parseHost } from '../identification/host.js'

function postgresUrl (value: string): boolean {
  try {
    const { protocol } = new URL(value)
    return protocol === 'postgres:' || protocol === 'postgresql:'
  } catch {
    return false
  }
}

/** A postgres:// URL that names its database (the path): the central database, the shared tables' database. */
function postgresDatabaseUrl (value: string): boolean {
  if (!postgresUrl(value)) return false
  const name = new URL(value).pathname.replace(/^\//, '')
  return name !== '' && !name.includes('/')
}

/** A central domain is a host as requests name it (the same rules as request hosts), already in its normal form, without a port. */
function centralDomain (value: string): boolean {
  try {
    const host = parseHost(value)
    return host.name === value && !value.startsWith('[')
  } catch {
    return false
  }
}

/** An Ajv (the major Fastify ships) that knows the options schema's keywords and formats. */
function createAjv (): Ajv {
  // allErrors stays off: the first problem is the one reported. No coercion
  // and no defaults here: the app's object is checked as given, never changed.
  const ajv = new Ajv({ allErrors: false, verbose: true, strict: true, allowUnionTypes: true })
  ajv.addKeyword({ keyword: 'problem', schemaType: 'string' })
  ajv.addKeyword({ keyword: 'keyProblem', schemaType: 'string' })
  ajv.addKeyword({
    keyword: 'shape',
    schemaType: 'string',
    errors: false,
    validate: (shape: ShapeName, value: unknown) => shapeChecks[shape](value)
  })
  ajv.addFormat('postgres-url', postgresUrl)
  ajv.addFormat('postgres-database-url', postgresDatabaseUrl)
  ajv.addFormat('central-domain', centralDomain)
  return ajv
}

type Segment = string

function segmentsOf (instancePath: string): Segment[] {
  if (instancePath === '') return []
  return instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** The schema that describes the value at `path`, or undefined (an unknown key). */
function schemaAt (schema: TSchema | undefined, path: Segment[]): TSchema | undefined {
  let node = schema
  for (const segment of path) {
    node = node === undefined ? undefined : childSchema(node, segment)
  }
  return node
}

function childSchema (node: TSchema, segment: Segment): TSchema | undefined {
  if (node.properties?.[segment] !== undefined) return node.properties[segment]
  if (node.items !== undefined && /^\d+$/.test(segment)) return node.items
  if (node.patternProperties !== undefined) {
    for (const [pattern, child] of Object.entries(node.patternProperties as Record<string, TSchema>)) {
      if (new RegExp(pattern, 'u').test(segment)) return child
    }
  }
  for (const member of (node.anyOf ?? []) as TSchema[]) {
    const child = childSchema(member, segment)
    if (child !== undefined) return child
  }
  return undefined
}

/** A short, safe rendering of a wrong value (never a URL: it may hold a password). */
function show (value: unknown, schema: TSchema | undefined): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  if (typeof value === 'string') return schema?.format === 'postgres-url' || schema?.format === 'postgres-database-url' || value.length > 80 ? 'a string' : JSON.stringify(value)
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'an array'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty object' : 'an object'
  return String(value)
}

/** Turns the validator's first problem into FST_TENANCY_INVALID_OPTION naming the option (`database.poolSize`). */
function describe (root: TSchema, errors: ErrorObject[]): InstanceType<typeof InvalidOptionError> {
  // Inside a union Ajv reports each member's problem; the deepest names the option best.
  // A missing or unknown property sits one level below the object it is reported on.
  const depth = (e: ErrorObject): number => segmentsOf(e.instancePath).length + (e.keyword === 'required' || e.keyword === 'additionalProperties' ? 1 : 0)
  const error = errors.reduce((best, e) => depth(e) > depth(best) ? e : best)
  const path = segmentsOf(error.instancePath)
  const name = (segments: Segment[]): string => segments.length === 0 ? 'options' : segments.join('.')

  // An item of a list is reported as the list, with the item's position.
  const item = path.findIndex((s, i) => /^\d+$/.test(s) && schemaAt(root, path.slice(0, i))?.items !== undefined)
  if (item !== -1) {
    const listPath = path.slice(0, item)
    const itemSchema = schemaAt(root, path.slice(0, item + 1))
    const value = (errors.find((e) => e.instancePath === `/${listPath.join('/')}/${path[item] as string}`) ?? error).data
    const shown = typeof value === 'object' && value !== null ? '' : ` (${show(value, itemSchema)})`
    return new InvalidOptionError(name(listPath), `has item ${path[item] as string}${shown}, which ${String(itemSchema?.problem ?? error.message)}`)
  }

  const here = schemaAt(root, path)
  if (error.keyword === 'required') {
    const missing = String(error.params.missingProperty)
    const child = here === undefined ? undefined : childSchema(here, missing)
    // A property with a sentence of its own is an option of its own; otherwise the object as a whole is wrong.
    if (child?.problem !== undefined) return new InvalidOptionError(name([...path, missing]), `is required and ${String(child.problem)}`)
    return new InvalidOptionError(name(path), String(here?.problem ?? `needs "${missing}"`))
  }
  if (error.keyword === 'additionalProperties') {
    const key = String(error.params.additionalProperty)
    if (here?.keyProblem !== undefined) return new InvalidOptionError(name([...path, key]), String(here.keyProblem))
    return new InvalidOptionError(name([...path, key]), 'is not an option fastify-tenancy knows; check its spelling and where it sits')
  }
  const value = error.data
  const problem = String(here?.problem ?? error.message)
  return new InvalidOptionError(name(path), value === undefined ? problem : `${problem} (got ${show(value, here)})`)
}

/** Compiles `schema` once; the checker throws FST_TENANCY_INVALID_OPTION for the first problem it finds. */
export function compileOptionsCheck (schema: TSchema): (value: unknown) => void {
  const validate = createAjv().compile(schema)
  return (value) => {
    if (!validate(value)) throw describe(schema, validate.errors ?? [])
  }
}
