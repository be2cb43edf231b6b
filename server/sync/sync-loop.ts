/**
 * The background loop of syncing, shaped like pg-boss's worker: runs `pass`
 * again and again, waiting `intervalMs` between passes unless a pass says
 * there is more to do or `notify()` wakes it; an error is kept as
 * `lastError`, reported, and the loop goes on. `stop()` lets a running pass
 * finish.
 */
export class SyncLoop {
  state: 'created' | 'active' | 'stopping' | 'stopped' = 'created'
  lastError: Error | null = null
  lastErrorAt: number | null = null
  private readonly pass: () => Promise<boolean>
  private readonly intervalMs: number
  private readonly onError: (error: Error) => void
  private running: Promise<void> | null = null
  private notified = false
  private wake: (() => void) | null = null

  /** `pass` returns true when it left work for a next pass right away. */
  constructor (pass: () => Promise<boolean>, intervalMs: number, onError: (error: Error) => void) {
    this.pass = pass
    this.intervalMs = intervalMs
    this.onError = onError
  }

  start (): void {
    if (this.running !== null) return
    this.state = 'active'
    this.running = this.loop()
  }

  /** Runs a pass now (after the one under way). */
  notify (): void {
    this.notified = true
    this.wake?.()
  }

  async stop (): Promise<void> {
    if (this.running === null) { this.state = 'stopped'; return }
    if (this.state === 'active') this.state = 'stopping'
    this.wake?.()
    await this.running
  }

  private async loop (): Promise<void> {
    while (this.state === 'active') {
      this.notified = false
      let more = false
      try {
        more = await this.pass()
      } catch (error) {
        this.lastError = error as Error
        this.lastErrorAt = Date.now()
        this.onError(error as Error)
      }
      if (more || this.notified || this.state !== 'active') continue
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.intervalMs)
        // The loop alone never keeps the process alive.
        timer.unref()
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = null
    }
    this.state = 'stopped'
  }
}
