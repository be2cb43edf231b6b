// The fastify-tenancy command, run for real: a child process of
// bin/fastify-tenancy.mjs, never a function called in the test's process.
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { pathToFileURL } from 'node:url'
import type { CentralDatabase } from './database.js'

export const ROOT = process.cwd()
export const BIN = join(ROOT, 'bin', 'fastify-tenancy.mjs')

export interface Run { code: number, stdout: string, stderr: string }

/** Runs the real command as a child process (stdin, stdout and stderr are pipes: not a terminal). */
export async function run (args: string[], options: { env?: Record<string, string>, cwd?: string, command?: string[], input?: string } = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const [command, ...prefix] = options.command ?? [process.execPath, BIN]
    const child = spawn(command as string, [...prefix, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    child.stdin?.end(options.input)
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d) => { stdout += String(d) })
    child.stderr?.on('data', (d) => { stderr += String(d) })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code: code ?? 1, stdout, stderr }) })
  })
}

/**
 * A temporary config file giving the fresh central database, the test's own
 * tenant database prefix and the test app's tenant schema; `extra` adds
 * options (`, strategy: 'shared'`, or `, tenantMigrations: ...` to replace it).
 */
export async function configFor (central: CentralDatabase, extra = '', fileName = 'tenancy.config.mjs'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ft-cli-'))
  const file = join(dir, fileName)
  const schema = pathToFileURL(join(ROOT, 'test', 'helpers', 'tenant-schema.ts')).href
  await writeFile(file, `import { TEST_TENANT_SCHEMA, TEST_SYNC } from ${JSON.stringify(schema)}\nexport default { ...TEST_TENANT_SCHEMA, database: { url: ${JSON.stringify(central.url)}, prefix: ${JSON.stringify(central.prefix)} }, provisioning: { spares: 0 }${extra} }\n`)
  return file
}

export interface TenantLine { type: 'tenant', rollout: string, wave: number, key: string, identifier: string, status: string, ok: boolean, migrations: string[], error?: string }

/** The per-tenant JSON lines of a tenants:migrate / rollback / seed run with --json, by identifier. */
export function tenantLines (stdout: string): TenantLine[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { type: string }).filter((x): x is TenantLine => x.type === 'tenant')
    .sort((a, b) => a.identifier.localeCompare(b.identifier))
}
