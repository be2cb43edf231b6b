import { randomBytes } from 'node:crypto'
import { assertSafeName, quoteIdent } from './names.js'
import { withServer } from './tenant-database.js'
import { ensureTemplate, migrationsFingerprint } from './template.js'

/**
 * Spare databases, cloned from the template ahead of time. CREATE DATABASE
 * costs a few hundred milliseconds whatever the template's size (it copies
 * every file of the database), but renaming a database costs under one: so a
 * new tenant takes a spare by renaming it, and a spare is cloned in the
 * background to replace it. Each spare's comment holds the fingerprint of the
 * migrations it was cloned at; spares of older migrations are dropped.
 */
export class SpareDatabases {
  private readonly prefix: string
  private readonly template: string
  private readonly count: number
  private readonly onError: (error: Error) => void
  private readonly refills = new Map<string, Promise<void>>()
  private closed = false

  constructor (options: { prefix: string, template: string, count: number, onError: (error: Error) => void }) {
    this.prefix = assertSafeName(`${options.prefix}spare_`)
    this.template = options.template
    this.count = options.count
    this.onError = options.onError
  }

  /** Renames a current spare on the server to `name`; false when none was free. */
  async claim (server: string, name: string): Promise<boolean> {
    if (this.count === 0) return false
    const fingerprint = migrationsFingerprint()
    const claimed = await withServer(server, async (c) => {
      const spares = await c.query(
        'select datname from pg_database where starts_with(datname, $1) and shobj_description(oid, \'pg_database\') = $2 order by datname',
        [this.prefix, fingerprint])
      for (const { datname } of spares.rows as Array<{ datname: string }>) {
        try {
          // Another instance may take the same spare first: then try the next.
          await c.query(`alter database ${quoteIdent(datname)} rename to ${quoteIdent(name)}`)
          await c.query(`comment on database ${quoteIdent(name)} is null`)
          return true
        } catch (error) {
          const code = (error as { code?: string }).code
          if (code !== '3D000' && code !== '55006') throw error
        }
      }
      return false
    })
    this.refill(server)
    return claimed
  }

  /** Brings the server's spares up to the configured count, in the background (one refill per server at a time). */
  refill (server: string): void {
    if (this.count === 0 || this.closed) return
    const previous = this.refills.get(server) ?? Promise.resolve()
    const next = previous.then(async () => { await this.fill(server) }).catch((error: Error) => { if (!this.closed) this.onError(error) })
    this.refills.set(server, next)
    void next.finally(() => { if (this.refills.get(server) === next) this.refills.delete(server) })
  }

  /** Waits for background refills to finish (tests, shutdown). */
  async idle (): Promise<void> {
    while (this.refills.size > 0) await Promise.allSettled([...this.refills.values()])
  }

  async close (): Promise<void> {
    this.closed = true
    await this.idle()
  }

  private async fill (server: string): Promise<void> {
    if (this.closed) return
    await ensureTemplate(server, this.template)
    const fingerprint = migrationsFingerprint()
    await withServer(server, async (c) => {
      const rows = (await c.query(
        'select datname, shobj_description(oid, \'pg_database\') as fingerprint from pg_database where starts_with(datname, $1)',
        [this.prefix])).rows as Array<{ datname: string, fingerprint: string | null }>
      let current = 0
      for (const row of rows) {
        if (row.fingerprint === fingerprint) current++
        else await c.query(`drop database if exists ${quoteIdent(row.datname)} with (force)`)
      }
      for (; current < this.count && !this.closed; current++) {
        const spare = assertSafeName(this.prefix + randomBytes(4).toString('hex'))
        await c.query(`create database ${quoteIdent(spare)} template ${quoteIdent(this.template)}`)
        await c.query(`comment on database ${quoteIdent(spare)} is '${fingerprint}'`)
      }
    })
  }
}
