#!/usr/bin/env node
// The fastify-tenancy command. In a clone (server/ is there) it runs the
// TypeScript sources through tsx, a development dependency, never a possibly
// stale dist/. An installed package ships only dist/, which plain node runs;
// tsx is then an optional peer: when the app has it, it is registered so a
// tenancy.config.ts or a tenants:run task.ts loads (its CommonJS hooks, then
// its ES module hooks: in this order a .ts file loads in a folder of either
// module type).
import { existsSync } from 'node:fs'

const source = new URL('../server/cli/main.ts', import.meta.url)
const built = new URL('../dist/server/cli/main.js', import.meta.url)
const fromSource = existsSync(source) || !existsSync(built)

async function registerTsx () {
  try {
    const [{ register: registerCommonJs }, { register: registerEsm }] = await Promise.all([import('tsx/cjs/api'), import('tsx/esm/api')])
    registerCommonJs()
    registerEsm()
    // Registered through its API, tsx leaves no trace in execArgv: the library
    // reads this mark to take tenantMigrations.pathTs, as the app does under tsx.
    globalThis[Symbol.for('fastify-tenancy.loadsTypeScript')] = true
    return true
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND') return false
    throw error
  }
}

if (!await registerTsx() && fromSource) {
  process.stderr.write('fastify-tenancy runs its TypeScript sources here and needs tsx: run npm install in the clone (or npm run build and use dist/).\n')
  process.exit(2)
}
await import((fromSource ? source : built).href)
