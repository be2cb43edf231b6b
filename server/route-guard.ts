import type { FastifyInstance } from 'fastify'
import { InvalidOptionError, UnguardedRouteError } from './errors.js'
import { ROUTE_MODES } from './options/index.js'

/** A route as Fastify prints it: methods, full path, and the names of its hooks by kind. */
export interface PrintedRoute {
  methods: string[]
  path: string
  hooks: Record<string, string[]>
}

/**
 * The name of the no-op `onTimeout` hook that marks an encapsulation context
 * as guarded by a registration: it goes to exactly the contexts the
 * registration's fallback hook goes to (the instance it is registered on and
 * every plugin under it), and, unlike the request hooks, no instrumentation
 * wraps it (@fastify/otel wraps the request hooks), so `printRoutes` shows its name.
 */
export function guardMarkerName (registration: string): string {
  return `fastifyTenancyGuard_${registration.replace(/[^\w]/g, '_')}`
}

/** A no-op onTimeout hook named for the registration (see guardMarkerName). */
export function guardMarker (registration: string): (request: unknown, reply: unknown, done: () => void) => void {
  const marker = function (_request: unknown, _reply: unknown, done: () => void): void { done() }
  Object.defineProperty(marker, 'name', { value: guardMarkerName(registration) })
  return marker
}

/** True when the app has routes already (before the plugin's onRoute hook can see them). */
export function hasRoutes (app: FastifyInstance): boolean {
  return printedRoutes(app.printRoutes()).length > 0
}

/** Records a route seen by the plugin's onRoute hook, under the paths the router may print it as (a prefix route's `/api` and `/api/`). */
export function remember (seen: Set<string>, method: string | string[], url: string): void {
  const bare = url.length > 1 && url.endsWith('/') ? url.slice(0, -1) : url
  for (const m of Array.isArray(method) ? method : [method]) {
    for (const path of [bare, bare === '/' ? bare : `${bare}/`]) seen.add(`${m.toUpperCase()} ${path}`)
  }
}

/** Why routes outside the plugin's instance get no decision, and what to do. */
const OUTSIDE = 'They are outside the Fastify instance fastify-tenancy is registered on (it was registered inside an encapsulated plugin), where no hook of its reaches. Register fastify-tenancy on the app itself (app.register(tenancyPlugin, options)), before or after the routes; give routes without a tenant config: { tenancy: \'central\' }.'

/** Why routes whose onRequest hooks lost the plugin's hook get no decision, and what to do. */
const REMOVED = 'Their tenancy onRequest hook was removed after fastify-tenancy added it (an onRoute hook took it out of route.onRequest, or deleted the property). Add your own hooks to the array, or assign route.onRequest (fastify-tenancy keeps its hook first), instead of removing entries; give routes without a tenant config: { tenancy: \'central\' }.'

/**
 * A route's `onRequest` that always holds the tenancy hooks: assigning it (an
 * onRoute hook of the app's that sets an auth hook) keeps them, first (after
 * any hook placed before them), in a copy (an array the app shares between
 * routes must not get one route's hook).
 */
const kGuards = Symbol.for('fastify-tenancy.guards')
type GuardHook = (...args: any[]) => unknown
interface GuardedRoute { onRequest?: GuardHook | GuardHook[], [kGuards]?: GuardHook[] }

function withGuards (value: GuardHook | GuardHook[] | undefined, guards: readonly GuardHook[]): GuardHook[] {
  const hooks = value === undefined ? [] : Array.isArray(value) ? [...value] : [value]
  let at = 0
  for (const guard of guards) {
    const i = hooks.indexOf(guard)
    if (i >= 0) { at = i + 1; continue }
    hooks.splice(at++, 0, guard)
  }
  return hooks
}

/** Adds `hook` to the route's onRequest hooks (after other registrations' tenancy hooks) for good: see kGuards. */
export function guardRoute (route: object, hook: GuardHook): void {
  const r = route as GuardedRoute
  let guards = r[kGuards]
  if (guards === undefined) {
    const list: GuardHook[] = []
    guards = list
    Object.defineProperty(r, kGuards, { value: list, enumerable: false })
    let hooks = withGuards(r.onRequest, list)
    Object.defineProperty(r, 'onRequest', {
      configurable: true,
      enumerable: true,
      get: () => hooks,
      set: (value: GuardHook | GuardHook[] | undefined) => { hooks = withGuards(value, list) }
    })
  }
  guards.push(hook)
  r.onRequest = r.onRequest as GuardHook[]
}

/** A route the plugin's onRoute hook guarded, as Fastify will run it. */
export interface GuardedRouteEntry { method: string | string[], url: string, route: object, hook: GuardHook }

/** Routes whose final onRequest hooks no longer hold the plugin's hook (something removed it after the onRoute hook): ready() fails naming them. */
export function assertHooksKept (entries: readonly GuardedRouteEntry[]): void {
  const lost = entries.filter((e) => {
    const hooks = (e.route as GuardedRoute).onRequest
    return !(Array.isArray(hooks) ? hooks.includes(e.hook) : hooks === e.hook)
  })
  if (lost.length === 0) return
  const byUrl = new Map<string, Set<string>>()
  for (const e of lost) {
    const methods = byUrl.get(e.url) ?? new Set()
    for (const m of Array.isArray(e.method) ? e.method : [e.method]) methods.add(m.toUpperCase())
    byUrl.set(e.url, methods)
  }
  throw new UnguardedRouteError(namedRoutes(byUrl), REMOVED)
}

export interface GuardCheck {
  registration: string
  /** Routes that got the registration's own hook (see `remember`). */
  seen: ReadonlySet<string>
  /** Whether the registration added its fallback (and its marker). */
  fallback: boolean
}

/**
 * Every route of the app that got neither the registration's own hook nor
 * its fallback. A lifecycle hook added to an instance reaches its routes and
 * those of every plugin under it, registered before or after; so these are
 * routes outside the instance the plugin is registered on (it was
 * registered inside an encapsulated plugin). No hook of ours can reach them;
 * `ready()` fails with FST_TENANCY_ROUTE_UNGUARDED naming them.
 */
export function assertEveryRouteGuarded (app: FastifyInstance, check: GuardCheck): void {
  const marker = guardMarkerName(check.registration)
  const unguarded = new Map<string, Set<string>>()
  for (const route of printedRoutes(app.printRoutes({ includeHooks: true }))) {
    if (check.fallback && (route.hooks.onTimeout ?? []).some((name) => name.includes(marker))) continue
    const methods = route.methods.filter((m) => !check.seen.has(`${m} ${route.path}`))
    if (methods.length === 0) continue
    const named = unguarded.get(route.path) ?? new Set()
    for (const method of methods) named.add(method)
    unguarded.set(route.path, named)
  }
  if (unguarded.size === 0) return
  throw new UnguardedRouteError(namedRoutes(unguarded), OUTSIDE)
}

/** `POST, PUT /a; GET /b`, by path; Fastify's own HEAD beside a GET is not worth naming. */
function namedRoutes (byPath: ReadonlyMap<string, ReadonlySet<string>>): string {
  return [...byPath].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([path, methods]) => `${[...methods].filter((m) => m !== 'HEAD' || !methods.has('GET')).join(', ')} ${path}`)
    .join('; ')
}

const TREE = /^[│├└─\s]*/
const NODE = /^(.*?)(?: \(([A-Z]+(?:, [A-Z]+)*)\))?(?: \{.*\})?$/
const META = /^• \((\w+)\) (\[.*\])$/

/**
 * Reads `printRoutes({ includeHooks: true })`: the router's tree, whose node
 * labels, joined from the root down (the column says the depth), are the
 * paths; a node with routes names their methods, `(GET, HEAD)`, and is
 * followed by their hooks as `• (kind) ["name()", …]`. (The tree without
 * common prefixes is not used: it prints a wildcard route as `*` alone.)
 */
export function printedRoutes (text: string): PrintedRoute[] {
  const routes: PrintedRoute[] = []
  const stack: Array<{ column: number, label: string }> = []
  let current: PrintedRoute | null = null
  for (const line of text.split('\n')) {
    const column = (TREE.exec(line)?.[0] ?? '').length
    const content = line.slice(column)
    if (content === '' || content === '(empty tree)') continue
    const meta = META.exec(content)
    if (meta !== null) {
      if (current === null) continue
      let names: unknown
      try { names = JSON.parse(meta[2] as string) } catch { names = [] }
      current.hooks[meta[1] as string] = Array.isArray(names) ? names.map(String) : []
      continue
    }
    const node = NODE.exec(content) as RegExpExecArray
    while (stack.length > 0 && (stack[stack.length - 1] as { column: number }).column >= column) stack.pop()
    const label = node[1] as string
    const path = stack.map((s) => s.label).join('') + label
    stack.push({ column, label })
    current = node[2] === undefined ? null : { methods: node[2].split(', '), path, hooks: {} }
    if (current !== null) routes.push(current)
  }
  return routes
}

/** A route's `config.tenancy`: a mode, or `{ mode, requires }` with migration names; anything else is FST_TENANCY_INVALID_OPTION naming the route. */
export function assertRouteTenancy (value: unknown, route: string, option: string): void {
  if (value === undefined) return
  const modes = ROUTE_MODES.map((m) => `"${m}"`).join(', ')
  const refuse = (what: string): never => { throw new InvalidOptionError(`${option} of route ${route}`, what) }
  const mode = (v: unknown, name: string): void => {
    if (v !== undefined && !(ROUTE_MODES as readonly unknown[]).includes(v)) refuse(`${name === '' ? '' : `${name} `}must be one of ${modes} (got ${JSON.stringify(v) ?? String(v)})`)
  }
  if (typeof value === 'string') { mode(value, ''); return }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(`must be one of ${modes}, or { mode, requires } (got ${JSON.stringify(value) ?? String(value)})`)
  const { mode: m, requires, ...rest } = value as { mode?: unknown, requires?: unknown }
  const unknown = Object.keys(rest)
  if (unknown.length > 0) refuse(`has an unknown property "${unknown[0] as string}" (known: mode, requires)`)
  mode(m, '.mode')
  const names = typeof requires === 'string' ? [requires] : requires
  if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === 'string' && n !== ''))) refuse('.requires must be a migration name or an array of them')
}
