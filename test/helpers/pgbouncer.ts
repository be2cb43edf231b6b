import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import pg from 'pg'
import { freePort } from '../../server/demo/embedded-postgres.js'
import { until, within } from './poll.js'

export const PGBOUNCER = process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer'

export interface PgBouncer {
  /** `server` rewritten to go through PgBouncer (same user, password and database). */
  url: (server: string) => string
  port: number
  /** PgBouncer's SHOW commands, on its admin console. */
  show: (what: 'pools' | 'stats' | 'clients' | 'servers') => Promise<Array<Record<string, unknown>>>
  stop: () => Promise<void>
}

export interface PgBouncerOptions {
  /** PgBouncer's pool_mode (default transaction). */
  mode?: 'transaction' | 'session'
  /** Server connections per user and database (default 20). */
  poolSize?: number
  /** Reset each server connection after every transaction (server_reset_query_always; default true). */
  reset?: boolean
}

/**
 * Starts Debian's PgBouncer as a child process in front of the PostgreSQL
 * server `server` points at, the way users run it: its own port, any
 * database forwarded (`* =`), SCRAM authentication with the server's user and
 * password, and `pool_mode = transaction` unless told otherwise. As root it
 * drops to the `postgres` user (PgBouncer refuses to run as root).
 */
export async function startPgBouncer (server: string, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER)) throw new Error(`PgBouncer is not at ${PGBOUNCER}: apt-get install pgbouncer (or set PGBOUNCER_PATH).`)
  const target = new URL(server)
  const user = decodeURIComponent(target.username)
  const password = decodeURIComponent(target.password)
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'pgbouncer-'))
  const config = join(dir, 'pgbouncer.ini')
  await writeFile(join(dir, 'userlist.txt'), `"${user}" "${password}"\n`)
  await writeFile(config, [
    '[databases]',
    `* = host=${target.hostname} port=${target.port || '5432'}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    `unix_socket_dir = ${dir}`,
    'auth_type = scram-sha-256',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    `pool_mode = ${options.mode ?? 'transaction'}`,
    `default_pool_size = ${options.poolSize ?? 20}`,
    // What the plugin requires in front of a database tenants share: every server connection reset after each transaction.
    ...(options.reset === false ? [] : ['server_reset_query = DISCARD ALL', 'server_reset_query_always = 1']),
    'max_client_conn = 2000',
    // Tenant databases come and go; PgBouncer closes server connections to a dropped one on its own.
    'server_check_delay = 0',
    'ignore_startup_parameters = extra_float_digits',
    `pidfile = ${join(dir, 'pgbouncer.pid')}`,
    ''
  ].join('\n'))
  const args = [config]
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString())
    for (const f of [dir, config, join(dir, 'userlist.txt')]) await chown(f, uid, gid)
    args.unshift('-u', 'postgres')
  }
  const child: ChildProcess = spawn(PGBOUNCER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const said: string[] = []
  child.stderr?.on('data', (chunk: Buffer) => { said.push(chunk.toString()); if (said.length > 20) said.shift() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const url = (s: string): string => {
    const u = new URL(s)
    u.hostname = '127.0.0.1'
    u.port = String(port)
    return u.toString()
  }
  // Ready when it answers a query; polled, with the process's exit as the other way out.
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`PgBouncer exited with ${child.exitCode}: ${said.join('')}`)
      const c = new pg.Client({ connectionString: url(server), connectionTimeoutMillis: 1000 })
      try {
        await c.connect()
        await c.query('select 1')
        return true
      } catch (error) {
        return (error as Error).message
      } finally {
        await c.end().catch(() => {})
      }
    }, { is: (answer) => answer === true, everyMs: 100, timeoutMs: 15_000, what: `PgBouncer answers on port ${port}` })
  } catch (error) {
    child.kill('SIGKILL')
    throw new Error(`${(error as Error).message} ${said.join('')}`)
  }
  return {
    url,
    port,
    async show (what) {
      const u = new URL(url(server))
      u.pathname = '/pgbouncer'
      const c = new pg.Client({ connectionString: u.toString() })
      await c.connect()
      try {
        // The admin console speaks the simple protocol only.
        return (await c.query(`show ${what}`)).rows
      } finally {
        await c.end()
      }
    },
    async stop () {
      if (child.exitCode === null) {
        child.kill('SIGINT')
        // A PgBouncer that does not stop within 5 s is killed.
        await within(exited, { timeoutMs: 5000, what: 'PgBouncer stops on SIGINT' }).catch(() => { child.kill('SIGKILL') })
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
