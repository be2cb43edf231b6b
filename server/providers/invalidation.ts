import pg from 'pg'

/** The channel the central database's triggers notify on when tenants or domains change. */
export const TENANT_CHANGE_CHANNEL = 'fastify_tenancy_tenants'

export interface ChangeListener {
  close: () => Promise<void>
  /** Resolves once the first LISTEN is in place. */
  ready: Promise<void>
}

/**
 * Listens on the central database for tenant and domain changes made by any
 * app instance (or by hand), and calls `onChange` for each. It reconnects
 * after a lost connection, and calls `onChange` then too, since changes may
 * have been missed while it was away.
 */
export function listenForTenantChanges (url: string, onChange: () => void, onError: (error: Error) => void): ChangeListener {
  let client: pg.Client | null = null
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let resolveReady!: () => void
  const ready = new Promise<void>((resolve) => { resolveReady = resolve })

  const connect = async (attempt: number): Promise<void> => {
    if (stopped) return
    const c = new pg.Client({ connectionString: url })
    c.on('notification', () => onChange())
    c.on('error', (error) => {
      onError(error)
      reconnect(c, 0)
    })
    try {
      await c.connect()
      await c.query(`listen ${TENANT_CHANGE_CHANNEL}`)
      if (stopped) { await c.end().catch(() => {}); return }
      client = c
      if (attempt > 0) onChange()
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
