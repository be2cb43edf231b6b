#!/usr/bin/env node
// The fastify-tenancy command. Runs the built JavaScript when there is a
// dist/ (an installed package), or the TypeScript sources through tsx (a clone).
import { existsSync } from 'node:fs'

const built = new URL('../dist/server/cli/main.js', import.meta.url)
if (existsSync(built)) {
  await import(built.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(new URL('../server/cli/main.ts', import.meta.url).href)
}
