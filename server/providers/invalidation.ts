import type { CentralListener } from '../database/central-listener.js'

/** The channel the central database's triggers notify on when tenants or domains change. */
export const TENANT_CHANGE_CHANNEL = 'fastify_tenancy_tenants'

/** What one changed row of `tenants` or `domains` touched (old and new values both). */
export interface TenantChange {
  keys: string[]
  identifiers: string[]
  resourceKeys: string[]
  domains: string[]
}

/** A change to the tenant(s) `keys`, naming the identifiers, resource keys and domains it touched (old and new). */
export function tenantChange (
  keys: readonly string[],
  names: { identifiers?: ReadonlyArray<string | undefined>, resourceKeys?: ReadonlyArray<string | undefined>, domains?: ReadonlyArray<string | undefined> } = {}
): TenantChange {
  const present = (values: ReadonlyArray<string | undefined> = []): string[] => values.filter((v): v is string => typeof v === 'string')
  return { keys: [...keys], identifiers: present(names.identifiers), resourceKeys: present(names.resourceKeys), domains: present(names.domains) }
}

const strings = (value: unknown): string[] => Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []

/**
 * Reads a payload of the row triggers (`{"t","k","i","r","d"}`, see
 * Migration20261125010002); null means "forget everything" (TRUNCATE, a
 * payload too long for NOTIFY, or one this version does not understand).
 */
export function parseTenantChange (payload: string | undefined): TenantChange | null {
  if (payload === undefined || !payload.startsWith('{')) return null
  try {
    const p = JSON.parse(payload) as Record<string, unknown>
    const change = { keys: strings(p.k), identifiers: strings(p.i), resourceKeys: strings(p.r), domains: strings(p.d) }
    return change.keys.length === 0 ? null : change
  } catch {
    return null
  }
}

/**
 * Follows tenant and domain changes made by any app instance (or by hand)
 * through the instance's central listener: `onChange` gets each change (null:
 * forget everything, e.g. TRUNCATE). While the listener is down the cache
 * must not be trusted (`onListening(false)`); once it is back, changes may
 * have been missed (`onListening(true)`).
 */
export function followTenantChanges (listener: Pick<CentralListener, 'subscribe'>, handlers: { onChange: (change: TenantChange | null) => void, onListening: (listening: boolean) => void }): () => void {
  return listener.subscribe(TENANT_CHANGE_CHANNEL, {
    onNotify: (payload) => { handlers.onChange(parseTenantChange(payload)) },
    onListening: handlers.onListening
  })
}
