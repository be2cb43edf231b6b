import { createHash } from 'node:crypto'
import type { MikroORM } from '@mikro-orm/postgresql'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'

export interface ThrottleOptions {
  /** Failures for one account from one address before backoff starts (default 5). */
  freeFailures: number
  /** The first wait, in seconds; each further failure doubles it (default 30). */
  firstDelaySeconds: number
  /** The longest wait, in seconds (default 900). */
  maxDelaySeconds: number
}

export const DEFAULT_THROTTLE: ThrottleOptions = { freeFailures: 5, firstDelaySeconds: 30, maxDelaySeconds: 900 }

/**
 * Backoff for failed sign-ins, counted per account and per address.
 *
 * Counting per (email, address) rather than per account is what keeps a
 * guesser from locking the real admin out: failures from one address slow
 * down that address only. The key is a hash of the email as typed, so an
 * unknown email is counted exactly like a real one, and the table does not
 * say which accounts exist. Past `freeFailures`, each failure doubles the
 * wait (up to `maxDelaySeconds`) instead of locking the account.
 */
export class SignInThrottle {
  constructor (private readonly orm: MikroORM, private readonly options: ThrottleOptions = DEFAULT_THROTTLE) {}

  /** The central tables' names in SQL. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  private key (email: string, address: string): string {
    return createHash('sha256').update(`${email.toLowerCase()}\n${address}`).digest('hex')
  }

  /** Seconds to wait before this email may be tried from this address again; 0 when it may now. */
  async wait (email: string, address: string): Promise<number> {
    const rows = await centralSql(this.orm)(
      `select ceil(extract(epoch from blocked_until - now()))::int as wait from ${this.t.admin_sign_in_failures} where key = ? and blocked_until > now()`,
      [this.key(email, address)])
    return Number(rows[0]?.wait ?? 0)
  }

  /** Counts a failure; returns the wait it starts (0 while failures are still free). */
  async fail (email: string, address: string): Promise<number> {
    const { freeFailures, firstDelaySeconds, maxDelaySeconds } = this.options
    // A quiet day forgets old failures, so a typo a week ago does not start a backoff today.
    const rows = await centralSql(this.orm)(
      `insert into ${this.t.admin_sign_in_failures} as f (key, failures, blocked_until, last_failure_at) values (?, 1, null, now())
       on conflict (key) do update set
         failures = case when f.last_failure_at < now() - interval '1 day' then 1 else f.failures + 1 end,
         last_failure_at = now()
       returning failures`, [this.key(email, address)])
    const failures = Number(rows[0]?.failures ?? 1)
    if (failures < freeFailures) return 0
    const wait = Math.min(maxDelaySeconds, firstDelaySeconds * 2 ** Math.min(30, failures - freeFailures))
    await centralSql(this.orm)(
      `update ${this.t.admin_sign_in_failures} set blocked_until = now() + make_interval(secs => ?) where key = ?`, [wait, this.key(email, address)])
    return wait
  }

  /** A successful sign-in from this address forgets its failures. */
  async succeed (email: string, address: string): Promise<void> {
    await centralSql(this.orm)(`delete from ${this.t.admin_sign_in_failures} where key = ?`, [this.key(email, address)])
  }

  /** Forgets failures older than a day. */
  async sweep (): Promise<void> {
    await centralSql(this.orm)(`delete from ${this.t.admin_sign_in_failures} where last_failure_at < now() - interval '1 day' and (blocked_until is null or blocked_until < now())`, [])
  }
}
