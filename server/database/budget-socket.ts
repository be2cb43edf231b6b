import { Socket } from 'node:net'

/** The permits of a connection budget, as one socket sees them. */
export interface SocketPermits {
  /** Waits for a permit (rejects with the reason the connection cannot open). */
  take: (socket: Socket) => Promise<void>
  /** Gives the permit back (called once, when the socket that held it closed). */
  give: () => void
}

/**
 * A socket that connects only once it holds a permit of its host's budget,
 * and gives the permit back when it closes, however it closes (the server
 * went away, the pool closed the connection, the login failed). Handed to
 * node-postgres as its `stream` option, so the budget counts exactly the
 * connections open, with no hook into the pool that opens them.
 */
export class BudgetedSocket extends Socket {
  private readonly permits: SocketPermits
  private holding = false

  constructor (permits: SocketPermits) {
    super()
    this.permits = permits
  }

  override connect (...args: any[]): this {
    if (this.holding) return (Socket.prototype.connect as (...a: any[]) => this).apply(this, args)
    this.permits.take(this).then(() => {
      if (this.destroyed) {
        // Given up while waiting (the connection timed out): the permit goes straight back.
        this.permits.give()
        return
      }
      this.holding = true
      this.once('close', () => { this.permits.give() })
      ;(Socket.prototype.connect as (...a: any[]) => this).apply(this, args)
    }, (error: Error) => { this.destroy(error) })
    return this
  }
}
