import { BlockList, isIP } from 'node:net'
import { InvalidMaintenanceError } from '../errors.js'

/** What `app.tenancy.maintenance(tenant, settings)` takes. */
export interface MaintenanceSettings {
  /** When maintenance ends by itself (a Date or ms since the epoch); it also sets Retry-After. Default: until ended. */
  until?: Date | number | null
  /** Shown on the 503 page and in its JSON. */
  message?: string | null
  /** Addresses (`203.0.113.7`) and ranges (`10.0.0.0/8`, `2001:db8::/32`) that still get through. */
  allow?: string[]
}

/** A tenant's maintenance, as every instance holds it in memory. */
export interface MaintenanceState {
  tenantKey: string
  message: string | null
  until: Date | null
  allow: string[]
  startedAt: Date
}

/** The checked settings, with the allowed addresses compiled for quick matching. */
export interface CheckedSettings {
  until: Date | null
  message: string | null
  allow: string[]
}

/** Checks settings before anything is written; bad ones throw FST_TENANCY_INVALID_MAINTENANCE. */
export function checkSettings (settings: MaintenanceSettings, now: number): CheckedSettings {
  if (typeof settings !== 'object' || settings === null) throw new InvalidMaintenanceError('give an object such as { until, message, allow }')
  let until: Date | null = null
  if (settings.until !== undefined && settings.until !== null) {
    until = settings.until instanceof Date ? settings.until : typeof settings.until === 'number' ? new Date(settings.until) : new Date(NaN)
    if (Number.isNaN(until.getTime())) throw new InvalidMaintenanceError('until must be a Date or milliseconds since the epoch')
    if (until.getTime() <= now) throw new InvalidMaintenanceError('until must be in the future')
  }
  const message = settings.message ?? null
  if (message !== null && (typeof message !== 'string' || message.length > 1000)) throw new InvalidMaintenanceError('message must be text of at most 1,000 characters')
  const allow = settings.allow ?? []
  if (!Array.isArray(allow) || allow.length > 100) throw new InvalidMaintenanceError('allow must be a list of at most 100 addresses or ranges')
  for (const entry of allow) {
    if (typeof entry !== 'string' || addressRule(entry) === null) throw new InvalidMaintenanceError(`allow has "${String(entry).slice(0, 60)}", which is not an IP address or a range such as 10.0.0.0/8`)
  }
  return { until, message: message === '' ? null : message, allow: allow.map((a) => a.trim()) }
}

function addressRule (entry: string): { address: string, prefix: number | null, family: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, extra] = entry.trim().split('/')
  if (extra !== undefined) return null
  const version = isIP(address)
  if (version === 0) return null
  const family = version === 4 ? 'ipv4' : 'ipv6'
  if (prefixText === undefined) return { address, prefix: null, family }
  if (!/^\d{1,3}$/.test(prefixText)) return null
  const prefix = Number(prefixText)
  if (prefix > (version === 4 ? 32 : 128)) return null
  return { address, prefix, family }
}

/** The allowed addresses as a BlockList (node's matcher for addresses and subnets). */
export function allowList (allow: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of allow) {
    const rule = addressRule(entry)
    if (rule === null) continue
    if (rule.prefix === null) list.addAddress(rule.address, rule.family)
    else list.addSubnet(rule.address, rule.prefix, rule.family)
  }
  return list
}
