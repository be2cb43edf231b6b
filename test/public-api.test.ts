import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import type { TenancyApi } from '../server/index.js'
import { buildApp } from './helpers/app.js'

// The members app.tenancy documents, and nothing else. `tsc --noEmit` (part
// of npm test) fails when the public type gains or loses a member without
// this list changing with it.
const DOCUMENTED = [
  'run', 'current', 'scope', 'em', 'tenants', 'create', 'provision', 'update', 'suspend', 'activate', 'delete', 'domains',
  'migrate', 'rollback', 'seed', 'migrationStatus', 'migrationStates', 'verifySchema', 'rollouts', 'events', 'jobs', 'clusters', 'sync',
  'invalidate', 'stats', 'orm', 'maintenance', 'endMaintenance', 'maintenanceOf', 'formerNames', 'impersonation',
  'move', 'isolate', 'consolidate', 'moves', 'bundles', 'swap', 'rebalance'
] as const
type Documented = typeof DOCUMENTED[number]
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const exactly: Same<keyof TenancyApi, Documented> = true

test('app.tenancy holds exactly the documented members, and the docs document each', async (t) => {
  assert.equal(exactly, true)
  const { app } = await buildApp(t)
  assert.deepEqual(Object.keys(app.tenancy).sort(), [...DOCUMENTED].sort())
  // The README and every page under docs/ (the API table is docs/api.md; moves and bundles are in docs/operations.md).
  const docs = new URL('../docs/', import.meta.url)
  const text = [new URL('../README.md', import.meta.url), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => new URL(f, docs))]
    .map((file) => readFileSync(file, 'utf8')).join('\n')
  for (const member of DOCUMENTED) assert.ok(text.includes(`app.tenancy.${member}`), `the docs document app.tenancy.${member}`)
})

test('internal methods are not on the public type nor on the object', async (t) => {
  const { app } = await buildApp(t)
  // @ts-expect-error openScope is internal
  assert.equal(app.tenancy.openScope, undefined)
  // @ts-expect-error closeScope is internal
  assert.equal(app.tenancy.closeScope, undefined)
  // @ts-expect-error identify is internal
  assert.equal(app.tenancy.identify, undefined)
  // @ts-expect-error assertServes is internal
  assert.equal(app.tenancy.assertServes, undefined)
})
