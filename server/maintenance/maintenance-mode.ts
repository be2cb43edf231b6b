import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIPv4, type BlockList } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { parse as parseCookies, serialize as serializeCookie } from 'cookie'
import type { SqlExecutor } from '../providers/provider.js'
import type { Tenant } from '../tenant.js'
import { MaintenanceError } from '../errors.js'
import type { CentralListener } from '../database/central-listener.js'
import { allowList, checkSettings, type MaintenanceSettings, type MaintenanceState } from './maintenance-settings.js'
import { maintenancePage } from './maintenance-page.js'
import type { CentralTables } from '../database/central-schema.js'

/** The channel the `tenant_maintenance` trigger notifies on. */
export const MAINTENANCE_CHANNEL = 'fastify_tenancy_maintenance'
/** Query parameter carrying the operator's bypass token; the cookie that keeps it. */
export const BYPASS_PARAMETER = 'tenancy-bypass'
export const BYPASS_COOKIE = 'tenancy_bypass'
/** Retry-After when maintenance has no end time. */
const DEFAULT_RETRY_SECONDS = 60

interface Held extends MaintenanceState {
  allowed: BlockList | null
  bypassHash: Buffer
}

export interface MaintenanceModeOptions {
  execute: SqlExecutor
  /** The instance's central listener, to follow changes made by other instances (null: not followed, as in the CLI). */
  listener: Pick<CentralListener, 'subscribe'> | null
  /** The central tables' names in SQL. */
  tables: CentralTables
  now: () => number
  onError: (error: Error) => void
}

/** What starting maintenance hands the operator: the token that lets them through (shown once). */
export interface MaintenanceStarted extends MaintenanceState {
  /** Open any of the tenant's URLs with `?tenancy-bypass=<token>` once; a cookie keeps you through. */
  bypassToken: string
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * Per-tenant maintenance mode. The tenants in maintenance (few) are held in
 * memory on every instance and reloaded when the central database notifies a
 * change, so the request check is a map lookup and makes no query.
 */
export class MaintenanceMode {
  private readonly options: MaintenanceModeOptions
  private held = new Map<string, Held>()
  private loading: Promise<void> | null = null
  private again = false

  constructor (options: MaintenanceModeOptions) {
    this.options = options
    // A change notified, or the listener back after a loss (changes may have been missed meanwhile): read them again.
    options.listener?.subscribe(MAINTENANCE_CHANNEL, {
      onNotify: () => { this.reload() },
      onListening: (listening) => { if (listening) this.reload() }
    })
  }

  async start (): Promise<void> {
    await this.load()
  }

  async close (): Promise<void> {
    await this.loading?.catch(() => {})
  }

  /** Puts a tenant in maintenance (or changes its settings); the bypass token is new each time. */
  async begin (tenant: Pick<Tenant, 'key'>, settings: MaintenanceSettings = {}): Promise<MaintenanceStarted> {
    const checked = checkSettings(settings, this.options.now())
    const token = randomBytes(24).toString('base64url')
    await this.options.execute(`
      insert into ${this.options.tables.tenant_maintenance} (tenant_key, message, until, allow, bypass_hash, started_at) values (?, ?, ?, ?::text[], ?, now())
      on conflict (tenant_key) do update set message = excluded.message, until = excluded.until, allow = excluded.allow, bypass_hash = excluded.bypass_hash, started_at = excluded.started_at`,
    [tenant.key, checked.message, checked.until, `{${checked.allow.map((a) => `"${a}"`).join(',')}}`, sha256(token).toString('hex')])
    await this.load()
    const state = this.of(tenant) as MaintenanceState
    return { ...state, bypassToken: token }
  }

  /** Ends a tenant's maintenance; harmless when there is none. */
  async end (tenant: Pick<Tenant, 'key'>): Promise<void> {
    await this.options.execute(`delete from ${this.options.tables.tenant_maintenance} where tenant_key = ?`, [tenant.key])
    await this.load()
  }

  /** The tenant's maintenance as this instance holds it, or null (also once `until` has passed). */
  of (tenant: Pick<Tenant, 'key'>): MaintenanceState | null {
    const held = this.current(tenant.key)
    if (held === null) return null
    return { tenantKey: held.tenantKey, message: held.message, until: held.until, allow: held.allow, startedAt: held.startedAt }
  }

  /**
   * Answers a tenant request while its tenant is in maintenance: 503 with
   * Retry-After and a page or JSON by Accept. Returns true when it answered;
   * allowed addresses and holders of the bypass cookie get false (go on).
   */
  gate (request: FastifyRequest, reply: FastifyReply, tenant: Tenant): boolean {
    if (this.held.size === 0) return false
    const held = this.current(tenant.key)
    if (held === null) return false
    if (held.allowed !== null && held.allowed.check(request.ip, isIPv4(request.ip) ? 'ipv4' : 'ipv6')) return false
    const query = request.query as Record<string, unknown> | undefined
    const offered = query?.[BYPASS_PARAMETER]
    if (typeof offered === 'string' && this.matches(held, offered)) {
      // Keep the token in a cookie and drop it from the address bar.
      const url = new URL(request.url, 'http://x')
      url.searchParams.delete(BYPASS_PARAMETER)
      const maxAge = held.until === null ? 24 * 60 * 60 : Math.max(1, Math.ceil((held.until.getTime() - this.options.now()) / 1000))
      reply.header('set-cookie', serializeCookie(BYPASS_COOKIE, offered, { path: '/', httpOnly: true, sameSite: 'lax', secure: request.protocol === 'https', maxAge }))
        .redirect(url.pathname + url.search, 302)
      return true
    }
    const cookie = request.headers.cookie === undefined ? undefined : parseCookies(request.headers.cookie)[BYPASS_COOKIE]
    if (cookie !== undefined && this.matches(held, cookie)) return false
    this.answer(request, reply, held)
    return true
  }

  private answer (request: FastifyRequest, reply: FastifyReply, held: Held): void {
    const error = new MaintenanceError(held.message ?? 'This site is down for maintenance; please try again soon.')
    const retry = held.until === null ? DEFAULT_RETRY_SECONDS : Math.max(1, Math.ceil((held.until.getTime() - this.options.now()) / 1000))
    reply.code(503).header('retry-after', String(retry)).header('cache-control', 'no-store')
    if (prefersHtml(request.headers.accept)) {
      reply.type('text/html; charset=utf-8').send(maintenancePage(error.message, held.until))
    } else {
      reply.send({ statusCode: 503, code: error.code, error: 'Service Unavailable', message: error.message, until: held.until?.toISOString() ?? null })
    }
  }

  private current (key: string): Held | null {
    const held = this.held.get(key)
    if (held === undefined) return null
    if (held.until !== null && held.until.getTime() <= this.options.now()) return null
    return held
  }

  private matches (held: Held, token: string): boolean {
    if (token.length === 0 || token.length > 200) return false
    return timingSafeEqual(sha256(token), held.bypassHash)
  }

  /** Reloads soon (a notification); notifications arriving during a load cause one more load. */
  private reload (): void {
    if (this.loading !== null) { this.again = true; return }
    this.load().catch(this.options.onError)
  }

  private async load (): Promise<void> {
    if (this.loading !== null) { this.again = true; await this.loading; return }
    this.loading = (async () => {
      do {
        this.again = false
        const rows = await this.options.execute(`select tenant_key, message, until, allow, bypass_hash, started_at from ${this.options.tables.tenant_maintenance}`, [])
        const next = new Map<string, Held>()
        for (const r of rows) {
          const allow = (r.allow as string[] | null) ?? []
          next.set(String(r.tenant_key), {
            tenantKey: String(r.tenant_key),
            message: (r.message as string | null) ?? null,
            until: r.until === null ? null : new Date(r.until as string),
            allow,
            startedAt: new Date(r.started_at as string),
            allowed: allow.length === 0 ? null : allowList(allow),
            bypassHash: Buffer.from(String(r.bypass_hash), 'hex')
          })
        }
        this.held = next
      } while (this.again)
    })()
    try { await this.loading } finally { this.loading = null }
  }
}

/** True when the client asks for HTML before (or instead of) JSON, as browsers do. */
function prefersHtml (accept: string | undefined): boolean {
  if (accept === undefined) return false
  const html = accept.indexOf('text/html')
  if (html < 0) return false
  const json = accept.indexOf('application/json')
  return json < 0 || html < json
}
