import type { FastifyRequest } from 'fastify'
import { DuplicateHostError, InvalidHostError } from '../errors.js'

/** The request's host, checked: `name` is lowercase ASCII without port; `ip` says it is an address. */
export interface RequestHost {
  name: string
  ip: boolean
}

/** A whole hostname of lowercase ASCII labels, each 1 to 63 characters, no dash at either end. */
const HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/
/** Printable ASCII only: a non-ASCII host is refused before lowercasing, which could turn one into ASCII (the Kelvin sign becomes `k`). */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/

/**
 * Reads the request's host as Fastify does (`request.host`: the Host header,
 * HTTP/2's `:authority`, or X-Forwarded-Host behind a trusted proxy), brings
 * it to its canonical form (see `normalizeHost`) and checks it. Anything that
 * is not then a plain ASCII hostname (punycode, unicode, quotes, NUL, spaces,
 * `..`, over 253 characters) is refused with FST_TENANCY_INVALID_HOST, so no
 * odd host ever reaches a lookup.
 */
export function requestHost (request: FastifyRequest): RequestHost {
  const value = request.host
  const known = checkedHosts.get(value)
  if (known !== undefined) return known
  const host = Object.freeze(parseHost(normalizeHost(value)))
  // Bounded: a client sending many names (valid ones only get here) empties it, nothing more.
  if (checkedHosts.size >= CHECKED_HOSTS_MAX) checkedHosts.clear()
  checkedHosts.set(value, host)
  return host
}

/**
 * Host values already checked, as sent: each resolver of each request reads
 * the host, and the same few names come again and again, so the regular
 * expressions run once per name. Only hosts that passed are kept. A plain
 * Map cleared when full rather than an Lru: a hit is one lookup with no
 * bookkeeping, and a client sending many names only makes them checked again.
 */
const checkedHosts = new Map<string | undefined, Readonly<RequestHost>>()
const CHECKED_HOSTS_MAX = 4096

/**
 * The canonical form of a Host value: ASCII letters lowercased and one
 * trailing dot of the name removed (`ACME.Example.com.:8080` is
 * `acme.example.com:8080`), since DNS names are case-insensitive and
 * `example.com.` is the same fully qualified name. Anything else is left for
 * `parseHost` to judge.
 */
export function normalizeHost (value: string | undefined): string | undefined {
  if (typeof value !== 'string' || !PRINTABLE_ASCII.test(value) || value.startsWith('[')) return value
  const lower = value.toLowerCase()
  const colon = lower.lastIndexOf(':')
  const name = colon < 0 ? lower : lower.slice(0, colon)
  if (!name.endsWith('.')) return lower
  return name.slice(0, -1) + (colon < 0 ? '' : lower.slice(colon))
}

/**
 * Throws FST_TENANCY_DUPLICATE_HOST when the request carries more than one
 * Host header: Node keeps the first and drops the others, so a proxy that
 * read the last one would route the request to another tenant than ours.
 */
/**
 * An absolute-form request line (`GET http://globex.example.com/t`, which
 * HTTP says takes precedence over Host) must name the Host header's host: a
 * proxy may route by one and the app would serve the other. Origin-form
 * (`/t`), the usual case, costs one character test.
 */
export function assertOneAuthority (url: string | undefined, host: string | string[] | undefined): void {
  if (url === undefined || url.charCodeAt(0) === 47 || url === '*') return
  let named: string
  let sent: string
  try {
    const line = new URL(url)
    named = line.host
    // Read the same way (lowercase, the scheme's default port left out).
    sent = typeof host === 'string' ? new URL(`${line.protocol}//${host}`).host : ''
  } catch {
    return
  }
  if (normalizeHost(named) !== normalizeHost(sent)) throw new DuplicateHostError()
}

export function assertSingleHost (rawHeaders: readonly string[]): void {
  let seen = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) throw new DuplicateHostError()
      seen = true
    }
  }
}

/**
 * The origin (`scheme://hostname[:port]`) at which this request's browser
 * would reach `hostname`: the scheme is `request.protocol` (X-Forwarded-Proto
 * behind a trusted proxy) brought to `http` or `https`, and the port is the
 * one in `request.host`, the same checked source the host comes from (the
 * forwarded host behind a trusted proxy, never the raw Host header then),
 * dropped when it is the scheme's default. X-Forwarded-Port is not read
 * (Fastify does not trust it either). Throws FST_TENANCY_INVALID_HOST for a
 * port that is not digits in range; returns null when the result would not
 * name `hostname` (so nobody is sent elsewhere).
 */
export function originFor (request: FastifyRequest, hostname: string): string | null {
  const scheme = request.protocol === 'https' ? 'https' : 'http'
  const port = portOf(normalizeHost(request.host))
  const shown = port === null || port === (scheme === 'https' ? 443 : 80) ? '' : `:${port}`
  const origin = `${scheme}://${hostname}${shown}`
  return sameOrigin(origin, scheme, hostname, shown) ? origin : null
}

/**
 * True when `location` is an absolute URL on `origin` (as `originFor` made
 * it) and nothing else: same scheme, host and port, no user information.
 */
export function isOnOrigin (location: string, origin: string): boolean {
  let url: URL
  try { url = new URL(location) } catch { return false }
  return url.origin === new URL(origin).origin && url.username === '' && url.password === '' && location.startsWith(origin + '/')
}

function sameOrigin (origin: string, scheme: string, hostname: string, shown: string): boolean {
  let url: URL
  try { url = new URL(origin) } catch { return false }
  return url.protocol === scheme + ':' && url.hostname === hostname && (url.port === '' ? '' : ':' + url.port) === shown && url.username === '' && url.password === ''
}

/** The port of a Host value (null when it has none); FST_TENANCY_INVALID_HOST when it is not 1-65535 in digits. */
function portOf (host: string | undefined): number | null {
  if (host === undefined || host === '') return null
  const close = host.startsWith('[') ? host.indexOf(']') : -1
  const colon = host.indexOf(':', close + 1)
  if (colon < 0) return null
  const text = host.slice(colon + 1)
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new InvalidHostError()
  return Number(text)
}

export function parseHost (header: string | undefined): RequestHost {
  if (typeof header !== 'string' || header.length === 0 || header.length > 260) throw new InvalidHostError()
  if (header.startsWith('[')) {
    // IPv6 literal, with an optional port.
    const end = header.indexOf(']')
    if (end < 0 || !/^\[[0-9a-f:.]+\](?::\d{1,5})?$/.test(header)) throw new InvalidHostError()
    return { name: header.slice(0, end + 1), ip: true }
  }
  const colon = header.lastIndexOf(':')
  let name = header
  if (colon >= 0) {
    const port = header.slice(colon + 1)
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new InvalidHostError()
    name = header.slice(0, colon)
  }
  if (name.length === 0 || name.length > 253) throw new InvalidHostError()
  if (IPV4.test(name)) return { name, ip: true }
  if (!HOSTNAME.test(name) || name.startsWith('xn--') || name.includes('.xn--')) throw new InvalidHostError()
  return { name, ip: false }
}

/**
 * The central domain that `host` is equal to or a child of, with the child
 * label. The longest matching central domain wins, whatever their order, so
 * `blog.site.com` stays central when `site.com` is central too.
 */
export function underCentralDomain (host: string, centralDomains: readonly string[]): { central: string, label: string | null } | null {
  for (const central of longestFirst(centralDomains)) {
    if (host === central) return { central, label: null }
    if (host.endsWith('.' + central)) {
      const label = host.slice(0, host.length - central.length - 1)
      // Only one label deep: a.b.example.com is not a subdomain tenant of example.com.
      return { central, label: label.includes('.') ? null : label }
    }
  }
  return null
}

const sorted = new WeakMap<readonly string[], readonly string[]>()

/** Central domains, longest first (kept per options array, which never changes after register). */
function longestFirst (domains: readonly string[]): readonly string[] {
  let result = sorted.get(domains)
  if (result === undefined) {
    result = [...domains].sort((a, b) => b.length - a.length)
    sorted.set(domains, result)
  }
  return result
}
