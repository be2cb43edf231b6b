#!/usr/bin/env node
// The fastify-tenancy command. tsx is registered first (its CommonJS hooks,
// then its ES module hooks: in this order a .ts file loads in a folder of
// either module type), so the TypeScript sources run without a build and a
// tenancy.config.ts or a tenants:run task.ts loads. In a clone (server/ is
// there) the sources run, never a possibly stale dist/; an installed package
// ships only dist/, and runs that.
import { existsSync } from 'node:fs'
import { register as registerCommonJs } from 'tsx/cjs/api'
import { register as registerEsm } from 'tsx/esm/api'

registerCommonJs()
registerEsm()
const source = new URL('../server/cli/main.ts', import.meta.url)
const built = new URL('../dist/server/cli/main.js', import.meta.url)
await import((existsSync(source) || !existsSync(built) ? source : built).href)
