import pg from 'pg'
import type { Fence } from './source-fence.js'

/**
 * The connections a move's held window works through: the fence around the
 * source and one to the target database (its subscription's position, the
 * sequences). They are opened before requests are held, so the hold waits
 * for no connection to be made.
 */
export interface SwitchLinks {
  fence: Fence
  /** The target database (for a schema tenant, the database its schema is in). */
  target: pg.Client
  close: () => Promise<void>
}

export async function openSwitchLinks (openFence: () => Promise<Fence>, targetUrl: string): Promise<SwitchLinks> {
  const target = new pg.Client({ connectionString: targetUrl, application_name: 'fastify-tenancy:move' })
  target.on('error', () => {})
  await target.connect()
  try {
    const fence = await openFence()
    return { fence, target, close: async () => { await fence.close(); await target.end().catch(() => {}) } }
  } catch (error) {
    await target.end().catch(() => {})
    throw error
  }
}
