import type { FastifyRequest } from 'fastify'
import { InvalidHostError } from '../errors.js'

/** The request's host, checked: `name` is lowercase ASCII without port; `ip` says it is an address. */
export interface RequestHost {
  name: string
  ip: boolean
}

/** A whole hostname of lowercase ASCII labels, each 1 to 63 characters, no dash at either end. */
const HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/
/**
 * Reads and checks the Host header. Anything that is not a
 * plain lowercase ASCII hostname (uppercase, punycode, unicode, quotes, NUL,
 * spaces, `..`, over 253 characters) is refused with FST_TENANCY_INVALID_HOST,
 * so no odd host ever reaches a lookup.
 */
export function requestHost (request: FastifyRequest): RequestHost {
  return parseHost(request.headers.host)
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
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new InvalidHostError()
    name = header.slice(0, colon)
  }
  if (name.length === 0 || name.length > 253) throw new InvalidHostError()
  if (IPV4.test(name)) return { name, ip: true }
  if (!HOSTNAME.test(name) || name.startsWith('xn--') || name.includes('.xn--')) throw new InvalidHostError()
  return { name, ip: false }
}

/** The central domain that `host` is equal to or a direct child of, with the child label. */
export function underCentralDomain (host: string, centralDomains: readonly string[]): { central: string, label: string | null } | null {
  for (const central of centralDomains) {
    if (host === central) return { central, label: null }
    if (host.endsWith('.' + central)) {
      const label = host.slice(0, host.length - central.length - 1)
      // Only one label deep: a.b.example.com is not a subdomain tenant of example.com.
      return { central, label: label.includes('.') ? null : label }
    }
  }
  return null
}
