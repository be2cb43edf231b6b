import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { ListenerLostError } from '../errors.js'

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
export function tenantChange (keys: readonly string[], names: { identifiers?: ReadonlyArray<string | undefined>, resourceKeys?: ReadonlyArray<string | undefined>, domains?: ReadonlyArray<string | undefined> } = {}): TenantChange {
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

export interface ChangeListenerOptions {
  url: string
  /**
   * How often the connection proves it is alive, in ms: it sends a NOTIFY to
   * itself and must hear it back within the same time, or it is taken for
   * dead (a half-open or stalled connection would otherwise hear nothing,
   * silently).
   */
  heartbeatMs: number
  /** A change made anywhere; null: forget everything (changes may have been missed). */
  onChange: (change: TenantChange | null) => void
  /** The listener is down (false: changes cannot be heard now) or back up (true). */
  onListening: (listening: boolean) => void
  onError: (error: Error) => void
}

export interface ChangeListener {
  close: () => Promise<void>
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>
  /** The backend process id of the current LISTEN connection (null while reconnecting), for operators and tests. */
  pid: () => number | null
}

/**
 * Listens on the central database for tenant and domain changes made by any
 * app instance (or by hand), and passes on each. The connection has TCP
 * keepalive, and a heartbeat: a NOTIFY to itself every `heartbeatMs`; a
 * heartbeat not heard back within `heartbeatMs` (a stalled server process,
 * a half-open connection) counts as a lost connection. On a lost connection
 * the cache is told to forget everything and stop caching, and the listener
 * reconnects with backoff; once back, the cache starts again from empty,
 * since changes may have been missed while it was away.
 */
export function listenForTenantChanges (options: ChangeListenerOptions): ChangeListener {
  const { url, heartbeatMs, onChange, onListening, onError } = options
  // A channel of this listener's own, so heartbeats reach no other instance.
  const heartbeatChannel = `fastify_tenancy_heartbeat_${randomBytes(6).toString('hex')}`
  let client: pg.Client | null = null
  let backendPid: number | null = null
  let stopped = false
  let retryTimer: NodeJS.Timeout | undefined
  let beatTimer: NodeJS.Timeout | undefined
  let beat = 0
  let resolveReady!: () => void
  const ready = new Promise<void>((resolve) => { resolveReady = resolve })

  const heartbeat = (c: pg.Client): void => {
    if (client !== c || stopped) return
    const expected = String(++beat)
    // Heard back: the notification handler below schedules the next one.
    beatTimer = setTimeout(() => { lost(c, new ListenerLostError(`missed its heartbeat (${heartbeatMs} ms)`)) }, heartbeatMs)
    beatTimer.unref()
    c.query('select pg_notify($1, $2)', [heartbeatChannel, expected]).catch(() => {})
  }

  const connect = async (attempt: number): Promise<void> => {
    if (stopped) return
    const c = new pg.Client({
      connectionString: url,
      application_name: 'fastify-tenancy:listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: heartbeatMs
    })
    c.on('notification', (message) => {
      if (client !== c) return
      if (message.channel === heartbeatChannel) {
        if (message.payload !== String(beat)) return
        clearTimeout(beatTimer)
        beatTimer = setTimeout(() => { heartbeat(c) }, heartbeatMs)
        beatTimer.unref()
        return
      }
      onChange(parseTenantChange(message.payload))
    })
    c.on('error', (error) => { lost(c, error) })
    c.on('end', () => { lost(c, new ListenerLostError('lost its connection')) })
    try {
      await c.connect()
      backendPid = (c as unknown as { processID?: number }).processID ?? null
      await c.query(`listen ${TENANT_CHANGE_CHANNEL}`)
      await c.query(`listen ${heartbeatChannel}`)
      if (stopped) { await c.end().catch(() => {}); return }
      client = c
      onListening(true)
      resolveReady()
      heartbeat(c)
    } catch (error) {
      onError(error as Error)
      abandon(c)
      schedule(attempt + 1)
    }
  }

  /** Drops a client without waiting for the server (which may not answer at all). */
  const abandon = (c: pg.Client): void => {
    c.removeAllListeners('notification')
    ;(c as unknown as { connection?: { stream?: { destroy: () => void } } }).connection?.stream?.destroy()
    c.end().catch(() => {})
  }

  const lost = (c: pg.Client, error: Error): void => {
    if (client !== c) return
    client = null
    backendPid = null
    clearTimeout(beatTimer)
    abandon(c)
    if (stopped) return
    onError(error)
    onListening(false)
    onChange(null)
    schedule(0)
  }

  const schedule = (attempt: number): void => {
    if (stopped) return
    clearTimeout(retryTimer)
    retryTimer = setTimeout(() => { void connect(attempt) }, Math.min(100 * 2 ** attempt, 5000))
    retryTimer.unref()
  }

  void connect(0)
  return {
    ready,
    pid: () => backendPid,
    close: async () => {
      stopped = true
      clearTimeout(retryTimer)
      clearTimeout(beatTimer)
      resolveReady()
      const c = client
      client = null
      // A server that does not answer (stalled) must not hold up shutdown.
      if (c !== null) {
        await Promise.race([c.end().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
        abandon(c)
      }
    }
  }
}
