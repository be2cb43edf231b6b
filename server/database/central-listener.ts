import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import pg from 'pg'
import { ListenerLostError } from '../errors.js'
import { misuse } from '../misuse.js'

/** `stopped` before start and after stop; `connecting` until the first LISTEN; `listening`; `reconnecting` after a loss. */
export type ListenerState = 'stopped' | 'connecting' | 'listening' | 'reconnecting'

/** A feature that follows one channel of the central database. */
export interface ChannelSubscriber {
  /** A notification on the channel, with its payload. */
  onNotify: (payload: string | undefined) => void
  /**
   * The listener lost its connection (false: notifications cannot be heard
   * now), or is back after a loss (true: some may have been missed, so
   * whatever was learnt from them should be read again).
   */
  onListening?: (listening: boolean) => void
}

export interface CentralListenerOptions {
  /** The central database past any transaction-mode pooler (`database.directUrl`, else `database.url`). */
  url: string
  /**
   * How often the connection proves it is alive, in ms: it sends a NOTIFY to
   * itself and must hear it back within the same time, or it is taken for
   * lost (a stalled server process or a half-open connection hears nothing,
   * silently).
   */
  heartbeatMs: number
  /** A lost connection or a failed attempt (the listener goes on by itself); `first` for the first of an outage. */
  onError: (error: Error, first: boolean) => void
  /** Listening again after a loss. */
  onResumed?: () => void
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * The one LISTEN connection of an instance, which every feature that follows
 * changes made elsewhere subscribes to (the tenant cache and renames on the
 * tenant channel, maintenance mode on its own). The connection has TCP
 * keepalive and a heartbeat; a lost one is reported to every subscriber and
 * replaced, with backoff (0.1 s doubling to 5 s), until `stop()`.
 */
export class CentralListener {
  private readonly options: CentralListenerOptions
  private readonly channels = new Map<string, Set<ChannelSubscriber>>()
  /** A channel of this connection's own, so heartbeats reach no other instance. */
  private readonly heartbeatChannel = `fastify_tenancy_heartbeat_${randomBytes(6).toString('hex')}`
  private client: pg.Client | null = null
  private backendPid: number | null = null
  private current: ListenerState = 'stopped'
  private error: Error | null = null
  private retryTimer: NodeJS.Timeout | undefined
  private beatTimer: NodeJS.Timeout | undefined
  private beat = 0
  private up: (() => void) | null = null

  constructor (options: CentralListenerOptions) {
    this.options = options
  }

  /** Follows `channel` (before `start`); returns the function that stops following it. */
  subscribe (channel: string, subscriber: ChannelSubscriber): () => void {
    if (!CHANNEL.test(channel)) throw misuse.badListenChannel(channel)
    if (this.current !== 'stopped') throw misuse.subscribedAfterStart()
    const subscribers = this.channels.get(channel) ?? new Set()
    subscribers.add(subscriber)
    this.channels.set(channel, subscribers)
    return () => { subscribers.delete(subscriber) }
  }

  get state (): ListenerState { return this.current }
  /** The last failure (a lost connection, a missed heartbeat, a failed attempt), kept after recovery; `state` says whether it is listening now. */
  get lastError (): Error | null { return this.error }
  /** The backend process id of the LISTEN connection (null while not listening), for operators and tests. */
  pid (): number | null { return this.backendPid }

  /** Connects and LISTENs; resolves once the first LISTEN is in place (or `stop()` was called). */
  async start (): Promise<void> {
    if (this.current !== 'stopped') return
    this.current = 'connecting'
    const listening = new Promise<void>((resolve) => { this.up = resolve })
    this.connect(0)
    await listening
  }

  /** Ends the connection; a server that does not answer (stalled) does not hold it up. */
  async stop (): Promise<void> {
    this.current = 'stopped'
    clearTimeout(this.retryTimer)
    clearTimeout(this.beatTimer)
    this.up?.()
    this.up = null
    const c = this.client
    this.client = null
    this.backendPid = null
    if (c !== null) {
      await Promise.race([c.end().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
      abandon(c)
    }
  }

  private isStopped (): boolean { return this.current === 'stopped' }

  private async connect (attempt: number): Promise<void> {
    if (this.isStopped()) return
    // Our own socket (pg's public `stream` option), so a stalled connection can be dropped without waiting for the server.
    const socket = new Socket()
    const c = new pg.Client({
      connectionString: this.options.url,
      application_name: 'fastify-tenancy:listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: this.options.heartbeatMs,
      stream: () => socket
    })
    sockets.set(c, socket)
    c.on('notification', (message) => { if (this.client === c) this.notified(c, message.channel, message.payload) })
    c.on('error', (error) => { this.lost(c, error) })
    c.on('end', () => { this.lost(c, new ListenerLostError('lost its connection')) })
    try {
      await c.connect()
      for (const channel of [...this.channels.keys(), this.heartbeatChannel]) await c.query(`listen ${channel}`)
      if (this.isStopped()) { abandon(c); return }
      this.client = c
      this.backendPid = (c as unknown as { processID?: number }).processID ?? null
      const resumed = this.current === 'reconnecting'
      this.current = 'listening'
      this.up?.()
      this.up = null
      this.heartbeat(c)
      if (resumed) {
        this.options.onResumed?.()
        this.tell(true)
      }
    } catch (error) {
      abandon(c)
      if (this.isStopped()) return
      // The first failed start is news; a failed retry after a loss already reported is not.
      const first = this.current === 'connecting' && attempt === 0
      this.error = error as Error
      this.options.onError(error as Error, first)
      this.schedule(attempt + 1)
    }
  }

  private notified (c: pg.Client, channel: string, payload: string | undefined): void {
    if (channel === this.heartbeatChannel) {
      if (payload !== String(this.beat)) return
      clearTimeout(this.beatTimer)
      this.beatTimer = setTimeout(() => { this.heartbeat(c) }, this.options.heartbeatMs)
      this.beatTimer.unref()
      return
    }
    for (const subscriber of this.channels.get(channel) ?? []) subscriber.onNotify(payload)
  }

  /** Sends a heartbeat; not heard back within heartbeatMs, the connection counts as lost. */
  private heartbeat (c: pg.Client): void {
    if (this.client !== c) return
    const expected = String(++this.beat)
    this.beatTimer = setTimeout(() => { this.lost(c, new ListenerLostError(`missed its heartbeat (${this.options.heartbeatMs} ms)`)) }, this.options.heartbeatMs)
    this.beatTimer.unref()
    c.query('select pg_notify($1, $2)', [this.heartbeatChannel, expected]).catch(() => {})
  }

  private lost (c: pg.Client, error: Error): void {
    if (this.client !== c) return
    this.client = null
    this.backendPid = null
    clearTimeout(this.beatTimer)
    abandon(c)
    if (this.isStopped()) return
    this.current = 'reconnecting'
    this.error = error
    this.options.onError(error, true)
    this.tell(false)
    this.schedule(0)
  }

  private tell (listening: boolean): void {
    for (const subscribers of this.channels.values()) for (const s of subscribers) s.onListening?.(listening)
  }

  private schedule (attempt: number): void {
    if (this.isStopped()) return
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => { this.connect(attempt) }, Math.min(100 * 2 ** attempt, 5000))
    this.retryTimer.unref()
  }
}

const sockets = new WeakMap<pg.Client, Socket>()

/** Drops a client without waiting for the server (which may not answer at all). */
function abandon (c: pg.Client): void {
  c.removeAllListeners('notification')
  sockets.get(c)?.destroy()
  c.end().catch(() => {})
}
