import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { until } from './poll.js'

export interface Bouncer {
  /** `url` rewritten to go through PgBouncer. */
  through: (url: string) => string
  stop: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/**
 * Debian's PgBouncer in transaction mode in front of the test server, with
 * `defaultPoolSize` server connections per database and user, each reset
 * after every transaction (`reset`: what the plugin requires in front of a
 * database tenants share). `users` are the roles (and passwords) it may log
 * in as.
 */
export async function startPgBouncer (
  serverUrl: string, users: Array<{ role: string, password: string }>, defaultPoolSize = 1, reset = true
): Promise<Bouncer> {
  const server = new URL(serverUrl)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'ft-bouncer-'))
  // PgBouncer drops root for the postgres user, who must write its log here.
  chmodSync(dir, 0o777)
  const auth = users.map((u) => `"${u.role}" "${u.password}"`).join('\n') + '\n'
  writeFileSync(join(dir, 'users.txt'), auth, { mode: 0o644 })
  writeFileSync(join(dir, 'pgbouncer.ini'), `[databases]
* = host=${server.hostname} port=${server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = md5
auth_file = ${join(dir, 'users.txt')}
pool_mode = transaction
default_pool_size = ${defaultPoolSize}
${reset ? 'server_reset_query = DISCARD ALL\nserver_reset_query_always = 1\n' : ''}max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
logfile = ${join(dir, 'pgbouncer.log')}
`, { mode: 0o644 })
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', join(dir, 'pgbouncer.ini')] : [join(dir, 'pgbouncer.ini')]
  const child: ChildProcess = spawn(process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer', args, { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => { exited = true })
  const through = (url: string): string => {
    const u = new URL(url)
    u.hostname = '127.0.0.1'
    u.port = String(port)
    return u.toString()
  }
  // Ready when a client gets through.
  const probe = users[0] as { role: string, password: string }
  const probeUrl = through(serverUrl).replace(/\/\/[^@]*@/, `//${probe.role}:${probe.password}@`)
  await until(async () => {
    if (exited) throw new Error('PgBouncer exited at start; see its log in ' + dir)
    const client = new pg.Client({ connectionString: probeUrl })
    try {
      await client.connect()
      return true
    } catch (error) {
      return String(error)
    } finally {
      await client.end().catch(() => {})
    }
  }, { is: (answer) => answer === true, everyMs: 50, timeoutMs: 10_000, what: `a client gets through PgBouncer on port ${port}` })
  return {
    through,
    stop: async () => {
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await gone
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
