import pg from 'pg'
import { MisconfigurationError } from '../errors.js'

export interface NotifyListener {
  close: () => Promise<void>
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>
}

/**
 * LISTENs on one channel of a database and calls `onNotify` for each
 * notification. It reconnects after a lost connection and calls `onNotify`
 * then too, since notifications may have been missed while it was away.
 */
export function listenOn (url: string, channel: string, onNotify: () => void, onError: (error: Error) => void): NotifyListener {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new MisconfigurationError(`"${channel}" cannot be a LISTEN channel: use lowercase letters, digits and underscores.`)
  let client: pg.Client | null = null
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let resolveReady!: () => void
  const ready = new Promise<void>((resolve) => { resolveReady = resolve })

  const connect = async (attempt: number): Promise<void> => {
    if (stopped) return
    const c = new pg.Client({ connectionString: url })
    c.on('notification', () => onNotify())
    c.on('error', (error) => {
      onError(error)
      reconnect(c, 0)
    })
    try {
      await c.connect()
      await c.query(`listen ${channel}`)
      if (stopped) { await c.end().catch(() => {}); return }
      client = c
      if (attempt > 0) onNotify()
      resolveReady()
    } catch (error) {
      onError(error as Error)
      reconnect(c, attempt + 1)
    }
  }

  const reconnect = (c: pg.Client, attempt: number): void => {
    if (client === c) client = null
    c.end().catch(() => {})
    if (stopped) return
    clearTimeout(timer)
    timer = setTimeout(() => { void connect(attempt + 1) }, Math.min(100 * 2 ** attempt, 5000))
    timer.unref()
  }

  void connect(0)
  return {
    ready,
    close: async () => {
      stopped = true
      clearTimeout(timer)
      resolveReady()
      if (client !== null) await client.end().catch(() => {})
    }
  }
}
