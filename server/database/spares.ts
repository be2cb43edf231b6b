import { randomBytes } from 'node:crypto'
import { assertSafeName, quoteIdent } from './names.js'
import { createDatabase, dropDatabase, withServer } from './tenant-database.js'
import { LockPools, LockSpace, lockId, withAdvisoryLock, withAdvisoryLockIfFree } from './advisory-locks.js'
import type pg from 'pg'
import { ensureTemplate } from './template.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { PG } from './pg-errors.js'

/**
 * Spare databases, cloned from the template ahead of time. CREATE DATABASE
 * costs a few hundred milliseconds whatever the template's size (it copies
 * every file of the database), but renaming a database costs under one: so a
 * new tenant takes a spare by renaming it, and a spare is cloned in the
 * background to replace it. Each spare's comment holds the fingerprint of the
 * migrations it was cloned at; spares of older migrations are dropped.
 *
 * Several app instances share the spares of a server. A spare is cloned
 * under a scratch name (never counted, never claimed) and renamed in place
 * under an advisory lock per server and prefix, where the spares are counted
 * again: so two instances filling at once never make more spares than the
 * count, and each claim renames a spare no other claim can take. A scratch
 * database is held by an advisory lock of its own while it is cloned; one
 * whose lock is free was left by a crash and is dropped by the next fill.
 */
export class SpareDatabases {
  private readonly prefix: string
  private readonly scratchPrefix: string
  private readonly template: string
  private readonly count: number
  private readonly onError: (error: Error) => void
  /** The tenant migrations: a spare is cloned at, and claimed only at, their current fingerprint. */
  private readonly migrator: TenantMigrator
  private readonly refills = new Map<string, Promise<void>>()
  /** Warm connections for the spares lock: a claim is on the path of every create. */
  private readonly lockPools = new LockPools()
  private closed = false

  constructor (options: { prefix: string, template: string, count: number, migrator: TenantMigrator, onError: (error: Error) => void }) {
    this.prefix = assertSafeName(`${options.prefix}spare_`)
    this.scratchPrefix = assertSafeName(`${options.prefix}scratch_`)
    this.template = options.template
    this.count = options.count
    this.onError = options.onError
    this.migrator = options.migrator
  }

  /** Renames a current spare on the server to `name`; false when none was free. */
  async claim (server: string, name: string): Promise<boolean> {
    if (this.count === 0) return false
    const fingerprint = await this.migrator.fingerprint()
    // Everything on the lock's own connection, inside its transaction (a rename may run in one): no other connection to open.
    const claimed = await this.locked(server, async (c) => {
      const spares = await c.query(
        'select datname from pg_database where starts_with(datname, $1) and shobj_description(oid, \'pg_database\') = $2 order by datname',
        [this.prefix, fingerprint])
      for (const { datname } of spares.rows as Array<{ datname: string }>) {
        await c.query('savepoint claim')
        try {
          await c.query(`alter database ${quoteIdent(datname)} rename to ${quoteIdent(name)}`)
          await c.query(`comment on database ${quoteIdent(name)} is null`)
          await c.query('release savepoint claim')
          return true
        } catch (error) {
          // Taken meanwhile by something outside the lock (an older version of this library, an operator): try the next.
          await c.query('rollback to savepoint claim')
          const code = (error as { code?: string }).code
          if (code !== PG.INVALID_CATALOG_NAME && code !== PG.OBJECT_IN_USE) throw error
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
    next.finally(() => { if (this.refills.get(server) === next) this.refills.delete(server) })
  }

  /** Waits for background refills to finish (tests, shutdown). */
  async idle (): Promise<void> {
    while (this.refills.size > 0) await Promise.allSettled([...this.refills.values()])
  }

  async close (): Promise<void> {
    this.closed = true
    await this.idle()
    await this.lockPools.close()
  }

  /** Runs `fn` holding the server's spares lock (taken on the server itself, so every instance using it meets there). */
  private async locked<T> (server: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    // Claims rename a spare on the lock's own connection: that rename counts only once committed.
    return await withAdvisoryLock(this.lockPools.pool(server), [LockSpace.spares, lockId(this.prefix)], fn, { writesOnLock: true })
  }

  private async fill (server: string): Promise<void> {
    if (this.closed) return
    const fingerprint = await ensureTemplate(server, this.template, this.migrator)
    const missing = await this.locked(server, async () => await this.tidy(server, fingerprint))
    for (let i = 0; i < missing && !this.closed; i++) {
      if (!await this.cloneOne(server, fingerprint)) break
    }
  }

  /** Under the lock: drops spares of older migrations and scratch databases left by a crash; returns how many spares are missing. */
  private async tidy (server: string, fingerprint: string): Promise<number> {
    const rows = await withServer(server, async (c) => (await c.query(
      'select datname, shobj_description(oid, \'pg_database\') as fingerprint from pg_database where starts_with(datname, $1) or starts_with(datname, $2)',
      [this.prefix, this.scratchPrefix])).rows as Array<{ datname: string, fingerprint: string | null }>)
    let current = 0
    for (const row of rows) {
      if (row.datname.startsWith(this.scratchPrefix)) {
        // Free lock: its cloner is gone. Held: another instance is cloning it right now.
        await withAdvisoryLockIfFree(server, [LockSpace.scratch, lockId(row.datname)], async () => { await dropDatabase(server, row.datname) })
      } else if (row.fingerprint === fingerprint) {
        current++
      } else {
        await dropDatabase(server, row.datname)
      }
    }
    return Math.max(0, this.count - current)
  }

  /** Clones one spare under a scratch name, then renames it in place if the server still lacks one; false when it was not needed. */
  private async cloneOne (server: string, fingerprint: string): Promise<boolean> {
    const scratch = assertSafeName(this.scratchPrefix + randomBytes(4).toString('hex'))
    return await withAdvisoryLock(server, [LockSpace.scratch, lockId(scratch)], async () => {
      await createDatabase(server, scratch, this.template)
      const kept = await this.locked(server, async () => await withServer(server, async (c) => {
        const have = await c.query(
          'select count(*)::int as n from pg_database where starts_with(datname, $1) and shobj_description(oid, \'pg_database\') = $2',
          [this.prefix, fingerprint])
        if (Number(have.rows[0]?.n ?? 0) >= this.count) return false
        const spare = assertSafeName(this.prefix + randomBytes(4).toString('hex'))
        await c.query(`comment on database ${quoteIdent(scratch)} is '${fingerprint}'`)
        await c.query(`alter database ${quoteIdent(scratch)} rename to ${quoteIdent(spare)}`)
        return true
      }))
      if (!kept) await dropDatabase(server, scratch)
      return kept
    })
  }
}
