import PgBoss from 'pg-boss'

/**
 * The one pg-boss instance of an app, on the central database, started the
 * first time something needs it (queued syncing, or the app's own jobs).
 */
export class QueueService {
  readonly schema: string
  private readonly url: string
  private readonly onError: (error: Error) => void
  private starting: Promise<PgBoss> | null = null
  private readonly queues = new Map<string, Promise<void>>()

  private readonly maintenanceSeconds: number

  constructor (url: string, schema: string, onError: (error: Error) => void, maintenanceSeconds = 60) {
    this.url = url
    this.schema = schema
    this.onError = onError
    this.maintenanceSeconds = maintenanceSeconds
  }

  get started (): boolean {
    return this.starting !== null
  }

  async boss (): Promise<PgBoss> {
    this.starting ??= (async () => {
      // Maintenance is what returns the jobs of a worker that died to the queue once they expire.
      const boss = new PgBoss({
        connectionString: this.url,
        schema: this.schema,
        max: 4,
        supervise: true,
        schedule: false,
        migrate: true,
        maintenanceIntervalSeconds: this.maintenanceSeconds
      })
      boss.on('error', this.onError)
      await boss.start()
      return boss
    })()
    return await this.starting
  }

  /** Creates queue `name` once (pg-boss drops sends to queues that do not exist). */
  async ensureQueue (name: string, options: Omit<PgBoss.Queue, 'name'> = {}): Promise<PgBoss> {
    const boss = await this.boss()
    let created = this.queues.get(name)
    if (created === undefined) {
      created = boss.createQueue(name, { name, ...options })
      this.queues.set(name, created)
    }
    await created
    return boss
  }

  async stop (): Promise<void> {
    if (this.starting === null) return
    const boss = await this.starting.catch(() => null)
    this.starting = null
    await boss?.stop({ graceful: true, wait: true, timeout: 5000 })
  }
}
