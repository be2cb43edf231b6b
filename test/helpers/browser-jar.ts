import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

interface StoredCookie {
  name: string
  value: string
  domain: string
  hostOnly: boolean
  path: string
  secure: boolean
}

/**
 * A cookie jar that keeps the rules a browser applies to Set-Cookie
 * (RFC 6265bis 5.7): a Domain must domain-match the host that sent it, and
 * `__Secure-` / `__Host-` names (any case) are refused unless Secure, and
 * for `__Host-` also without Domain and with Path=/. Tests use it to play a
 * browser that visits a tenant subdomain and then the admin.
 */
export class BrowserJar {
  readonly cookies: StoredCookie[] = []
  /** Set-Cookie headers the jar refused, for the test to show the attack was tried. */
  readonly refused: string[] = []

  store (setCookie: string | string[] | undefined, host: string): void {
    for (const line of [setCookie ?? []].flat()) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim())
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      const attrs = new Map(attributes.map((a) => {
        const i = a.indexOf('=')
        return i < 0 ? [a.toLowerCase(), ''] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)]
      }))
      const domainAttr = attrs.get('domain')?.replace(/^\./, '').toLowerCase()
      const secure = attrs.has('secure')
      const path = attrs.get('path') ?? '/'
      const lower = name.toLowerCase()
      if (domainAttr !== undefined && host !== domainAttr && !host.endsWith('.' + domainAttr)) { this.refused.push(line); continue }
      if (lower.startsWith('__secure-') && !secure) { this.refused.push(line); continue }
      if (lower.startsWith('__host-') && (!secure || domainAttr !== undefined || path !== '/')) { this.refused.push(line); continue }
      const cookie: StoredCookie = { name, value, domain: domainAttr ?? host, hostOnly: domainAttr === undefined, path, secure }
      const at = this.cookies.findIndex((c) => c.name === name && c.domain === cookie.domain && c.path === path)
      const expired = attrs.has('expires') && new Date(String(attrs.get('expires'))).getTime() < Date.now()
      if (at >= 0) this.cookies.splice(at, 1)
      if (value !== '' && !expired && attrs.get('max-age') !== '0') this.cookies.push(cookie)
    }
  }

  /** The Cookie header a browser sends to `host` for `path`: longer paths first, as browsers order them. */
  header (host: string, path: string): string {
    return this.cookies
      .filter((c) => (c.hostOnly ? host === c.domain : host === c.domain || host.endsWith('.' + c.domain)) && path.startsWith(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`).join('; ')
  }

  get (name: string): string | undefined {
    return this.cookies.find((c) => c.name === name)?.value
  }
}

/** A browser on one jar: GETs and form POSTs to any host of the app, from one address. */
export class Browser {
  readonly jar = new BrowserJar()
  constructor (readonly app: FastifyInstance, readonly address = '127.0.0.1') {}

  async request (method: 'GET' | 'POST', host: string, url: string, form?: Record<string, string>): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method,
      url,
      remoteAddress: this.address,
      headers: {
        host,
        cookie: this.jar.header(host, url.split('?')[0] ?? '/'),
        ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' })
      },
      payload: form === undefined ? undefined : new URLSearchParams(form).toString()
    })
    this.jar.store(res.headers['set-cookie'] as string | string[] | undefined, host)
    return res
  }
}
