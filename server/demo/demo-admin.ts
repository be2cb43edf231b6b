// The demo's first admin, made the way an app makes its own: with the
// fastify-tenancy command (admin:create, admin:reset-password), not with the
// library's internals. An app runs `npx fastify-tenancy admin:create`; the
// demo runs the command of this clone (bin/), which loads the sources.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const command = fileURLToPath(new URL('../../bin/fastify-tenancy.mjs', import.meta.url))

interface CommandResult { ok: boolean, json: Record<string, unknown> }

async function fastifyTenancy (args: string[], databaseUrl: string): Promise<CommandResult> {
  return await new Promise((resolve, reject) => {
    // Only the central URL: no config file of the working folder is read.
    execFile(process.execPath, [command, ...args, '--json'], { env: { ...process.env, DATABASE_URL: databaseUrl } }, (error, stdout, stderr) => {
      try {
        resolve({ ok: error === null, json: JSON.parse(stdout) as Record<string, unknown> })
      } catch {
        reject(new Error(`fastify-tenancy ${args[0] ?? ''} failed: ${stderr || stdout}`))
      }
    })
  })
}

export interface DemoAdmin {
  /** The password to print: the generated one when the admin was made now, else undefined. */
  password?: string
  created: boolean
}

/**
 * Makes the owner `email` when there is none (with `password`, or a
 * generated one returned to print once); with `password` given and the
 * admin there already, sets it as their password.
 */
export async function ensureDemoAdmin (databaseUrl: string, email: string, password: string | undefined): Promise<DemoAdmin> {
  const made = await fastifyTenancy(['admin:create', '--email', email, '--name', 'Demo Admin', ...(password === undefined ? [] : ['--password', password])], databaseUrl)
  if (made.ok) return { created: true, password: (made.json.password as string | undefined) ?? password }
  if (made.json.code !== 'FST_TENANCY_ADMIN_EXISTS') throw new Error(`fastify-tenancy admin:create failed: ${String(made.json.message)}`)
  if (password !== undefined) {
    const reset = await fastifyTenancy(['admin:reset-password', '--email', email, '--password', password], databaseUrl)
    if (!reset.ok) throw new Error(`fastify-tenancy admin:reset-password failed: ${String(reset.json.message)}`)
  }
  return { created: false }
}
