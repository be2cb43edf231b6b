import type { FastifyInstance } from 'fastify'
import { UnguardedRouteError } from './errors.js'

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
  // Fastify's own HEAD beside a GET is not worth naming.
  const named = [...unguarded].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([path, methods]) => `${[...methods].filter((m) => m !== 'HEAD' || !methods.has('GET')).join(', ')} ${path}`)
  throw new UnguardedRouteError(named.join('; '))
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
