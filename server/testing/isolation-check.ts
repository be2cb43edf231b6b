import { randomBytes } from 'node:crypto'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { IsolationLeakError } from '../errors.js'
import { printedRoutes } from '../route-guard.js'
import type { Tenant } from '../tenant.js'
import { createTestTenant, type TestTenant } from './test-tenants.js'

type Injected = Awaited<ReturnType<FastifyInstance['inject']>>

export interface SeedContext {
  tenant: Tenant
  host: string
  /**
   * A string unique to this tenant and this check: put it in what you create
   * (a name, a title, an email's local part), so the check can recognise the
   * tenant's rows wherever they show up.
   */
  marker: string
  /** `app.inject` with this tenant's Host header and `headers`. */
  inject: (options: InjectOptions) => Promise<Injected>
}

export interface IsolationOptions {
  /**
   * Creates the tenant's data through the app's own API (or `withTenant`),
   * and returns values for route parameters naming what it made
   * (`{ id: '42' }` fills `/invoices/:id`). Routes whose parameters get no
   * value are listed as skipped.
   */
  seed: (context: SeedContext) => Promise<Record<string, string> | undefined | void>
  /** Headers sent with every request of a tenant (a signed-in user's cookie, a token). */
  headers?: (tenant: Tenant, host: string) => Record<string, string> | Promise<Record<string, string>>
  /** The two tenants (default: two new ones from createTestTenant, removed at the end). */
  tenants?: [TestTenant, TestTenant]
  /** Routes left out, as `METHOD /path` (`GET /health`) or a path prefix ending in `/` (`/admin/`). */
  skip?: string[]
  /** The body a write route gets (default `{ name: marker, title: marker }`); the marker is the writing tenant's. */
  writeBody?: (route: { method: string, path: string }, marker: string) => unknown
  /** Throw TenancyIsolationError when a leak is found (default true); else only the report says so. */
  throwOnLeak?: boolean
}

export interface IsolationLeak {
  /** `GET /invoices/:id` */
  route: string
  /** The tenant that asked, and the one whose data it got or changed. */
  asked: string
  owner: string
  kind: 'read' | 'write'
  /** The leaked row (the smallest JSON object holding the other tenant's marker), or a piece of the body around it. */
  row: string
}

export interface IsolationReport {
  routes: string[]
  requests: number
  skipped: Array<{ route: string, reason: string }>
  leaks: IsolationLeak[]
}

/** Thrown by checkIsolation (code FST_TENANCY_ISOLATION_LEAK): its message names every route that leaked and what it leaked; `report` has the details. */
export const TenancyIsolationError = IsolationLeakError
// eslint-disable-next-line @typescript-eslint/no-redeclare -- one name for the value and its type, as a class gives
export type TenancyIsolationError = InstanceType<typeof IsolationLeakError> & { report: IsolationReport }

function leakError (report: IsolationReport): TenancyIsolationError {
  const message = `Tenant isolation failed on ${report.leaks.length} probe${report.leaks.length === 1 ? '' : 's'}:\n` +
    report.leaks.map((l) => `- ${l.route}: tenant "${l.asked}" ${l.kind === 'read' ? 'got a row of' : 'changed data of'} tenant "${l.owner}": ${l.row}`).join('\n')
  const error = new IsolationLeakError(message) as TenancyIsolationError
  error.report = report
  return error
}

interface Side {
  test: TestTenant
  marker: string
  params: Record<string, string>
  headers: Record<string, string>
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const PARAM = /:([A-Za-z_$][\w$]*)(?:\([^)]*\))?\??/g

/** The route's path with its parameters filled from `params`, or the name of the first one without a value. */
function fill (path: string, params: Record<string, string>): { url: string } | { missing: string } {
  let missing: string | null = null
  const url = path.replace(PARAM, (_all, name: string) => {
    const value = params[name]
    if (value === undefined) { missing ??= name; return '' }
    return encodeURIComponent(value)
  })
  return missing === null ? { url } : { missing }
}

/** The smallest JSON value in the body that holds the marker (a row), else a piece of the text around it. */
function leakedRow (body: string, marker: string): string {
  try {
    let best: unknown = null
    const visit = (value: unknown): boolean => {
      if (typeof value === 'string') return value.includes(marker)
      if (value === null || typeof value !== 'object') return false
      let holds = false
      for (const child of Object.values(value)) if (visit(child)) holds = true
      if (holds && best === null) best = value
      return holds
    }
    visit(JSON.parse(body))
    if (best !== null) return JSON.stringify(best).slice(0, 300)
  } catch { /* not JSON */ }
  const at = body.indexOf(marker)
  return JSON.stringify(body.slice(Math.max(0, at - 80), at + marker.length + 80))
}

function count (text: string, marker: string): number {
  return text.split(marker).length - 1
}

/**
 * Probes the app's own routes with two tenants: each is seeded through the
 * app's API with a marker of its own, then every GET route is asked as each
 * tenant (alternating, so a cache that forgets the tenant shows too), with
 * its own parameters and with the other tenant's, and no answer may hold the
 * other tenant's marker; then every write route is tried as one tenant with
 * the other's parameters, and the other tenant's answers must not change.
 */
export async function checkIsolation (app: FastifyInstance, options: IsolationOptions): Promise<IsolationReport> {
  const made: TestTenant[] = []
  try {
    const tests = options.tenants ?? [await createTestTenant(app), await createTestTenant(app)]
    if (options.tenants === undefined) made.push(...tests)
    const sides: Side[] = []
    for (const test of tests) {
      const headers = { ...(await options.headers?.(test.tenant, test.host)), host: test.host }
      const marker = `iso${randomBytes(6).toString('hex')}`
      const inject = async (o: InjectOptions): Promise<Injected> => await app.inject({ ...o, headers: { ...headers, ...o.headers } })
      const params = (await options.seed({ tenant: test.tenant, host: test.host, marker, inject })) ?? {}
      sides.push({ test, marker, params, headers })
    }
    const [a, b] = sides as [Side, Side]
    return await probe(app, options, a, b)
  } finally {
    for (const test of made) await test.remove()
  }
}

async function probe (app: FastifyInstance, options: IsolationOptions, a: Side, b: Side): Promise<IsolationReport> {
  const report: IsolationReport = { routes: [], requests: 0, skipped: [], leaks: [] }
  const skipped = (route: string, path: string): boolean => (options.skip ?? []).some((s) => s === route || (s.endsWith('/') && path.startsWith(s)))
  const reads: string[] = []
  const writes: Array<{ method: string, path: string }> = []
  for (const route of printedRoutes(app.printRoutes())) {
    if (route.path.includes('*')) { report.skipped.push({ route: `${route.methods.join(', ')} ${route.path}`, reason: 'a wildcard path' }); continue }
    for (const method of route.methods) {
      const name = `${method} ${route.path}`
      if (skipped(name, route.path)) continue
      if (method === 'GET') reads.push(route.path)
      else if (WRITES.has(method)) writes.push({ method, path: route.path })
    }
  }
  const ask = async (side: Side, method: string, url: string, payload?: unknown): Promise<Injected> => {
    report.requests++
    return await app.inject({ method: method as 'GET', url, headers: side.headers, ...(payload === undefined ? {} : { payload: payload as string }) })
  }
  const leak = (route: string, asked: Side, owner: Side, kind: 'read' | 'write', body: string): void => {
    report.leaks.push({ route, asked: asked.test.tenant.identifier, owner: owner.test.tenant.identifier, kind, row: leakedRow(body, owner.marker) })
  }

  // Reads: a, b, a again (a response kept from b's request shows in a's second turn).
  const readable: string[] = []
  for (const path of reads) {
    const route = `GET ${path}`
    const own = fill(path, a.params)
    if ('missing' in own || 'missing' in fill(path, b.params)) {
      report.skipped.push({ route, reason: `no value for :${'missing' in own ? own.missing : (fill(path, b.params) as { missing: string }).missing} (return it from seed)` })
      continue
    }
    readable.push(path)
    report.routes.push(route)
  }
  for (const [asker, other] of [[a, b], [b, a], [a, b]] as Array<[Side, Side]>) {
    for (const path of readable) {
      const route = `GET ${path}`
      const mine = (fill(path, asker.params) as { url: string }).url
      const res = await ask(asker, 'GET', mine)
      if (res.body.includes(other.marker)) leak(route, asker, other, 'read', res.body)
      const theirs = (fill(path, other.params) as { url: string }).url
      if (theirs === mine) continue
      // Asking for the other tenant's row by its id: a 404 that echoes the id is not a leak, a 2xx with its data is.
      const cross = await ask(asker, 'GET', theirs)
      if (cross.statusCode < 300 && cross.body.includes(other.marker)) leak(`${route} (with ${other.test.tenant.identifier}'s parameters)`, asker, other, 'read', cross.body)
    }
  }

  // Writes: as one tenant, aimed at the other's rows (its parameters); the other's answers must stay as they were.
  const view = async (side: Side): Promise<Map<string, { status: number, own: number, foreign: string | null }>> => {
    const seen = new Map<string, { status: number, own: number, foreign: string | null }>()
    const other = side === a ? b : a
    for (const path of readable) {
      const res = await ask(side, 'GET', (fill(path, side.params) as { url: string }).url)
      seen.set(path, { status: res.statusCode, own: count(res.body, side.marker), foreign: res.body.includes(other.marker) ? res.body : null })
    }
    return seen
  }
  const body = options.writeBody ?? ((_route, marker) => ({ name: marker, title: marker }))
  for (const [asker, owner] of [[a, b], [b, a]] as Array<[Side, Side]>) {
    let before = await view(owner)
    for (const { method, path } of writes) {
      const target = fill(path, owner.params)
      const route = `${method} ${path}`
      if ('missing' in target) {
        if (asker === a) report.skipped.push({ route, reason: `no value for :${target.missing} (return it from seed)` })
        continue
      }
      if (asker === a) report.routes.push(route)
      await ask(asker, method, target.url, method === 'DELETE' ? undefined : body({ method, path }, asker.marker))
      const after = await view(owner)
      for (const [p, now] of after) {
        const was = before.get(p)
        // Another tenant's rows that were there before this write are a read leak, reported above, not this write's.
        if (now.foreign !== null && (was === undefined || was.foreign === null)) {
          report.leaks.push({ route, asked: asker.test.tenant.identifier, owner: owner.test.tenant.identifier, kind: 'write', row: `GET ${p} of "${owner.test.tenant.identifier}" now shows ${leakedRow(now.foreign, asker.marker)}` })
        } else if (was !== undefined && (was.status !== now.status || was.own !== now.own)) {
          report.leaks.push({ route, asked: asker.test.tenant.identifier, owner: owner.test.tenant.identifier, kind: 'write', row: `GET ${p} of "${owner.test.tenant.identifier}" changed (status ${was.status} → ${now.status}, its rows ${was.own} → ${now.own})` })
        }
      }
      before = after
    }
  }
  if (report.leaks.length > 0 && options.throwOnLeak !== false) throw leakError(report)
  return report
}
