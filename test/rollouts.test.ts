import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from './helpers/app.js'
import { makeTenants } from './helpers/tenants.js'
import { markerRuns, plantFailure, withMarker } from './helpers/rollouts.js'
import { until } from './helpers/poll.js'
import type { RolloutTenantResult } from '../server/index.js'

// Tenants are made at the test app's one migration; a second app on the same
// central database is the new deploy, with one more migration to roll out.

test('a canary wave of 3 runs first and waits for a go; halt holds it; resume runs the rest, each tenant once; a second rollout skips every tenant', async (t) => {
  const { app, central } = await buildApp(t)
  const tenants = await makeTenants(app, 8, 'c')
  const { app: next } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const started = await next.tenancy.rollouts.start({ canary: 3, concurrency: 2, startedBy: 'test' })
  assert.equal(started.status, 'running')
  assert.deepEqual(started.waves.map((w) => [w.name, w.counts.pending]), [['canary', 3], ['rollout', 5]])
  const waited = await next.tenancy.rollouts.run(started.id)
  assert.equal(waited.status, 'waiting')
  assert.equal(waited.goAt, null, 'no --canary-wait: it waits for a go')
  assert.deepEqual(waited.waves.map((w) => [w.name, w.counts.done, w.counts.pending]), [['canary', 3, 0], ['rollout', 0, 5]])
  assert.deepEqual(await markerRuns(next, tenants), [1, 1, 1, 0, 0, 0, 0, 0], 'the first three in identifier order, and only them')
  const again = await next.tenancy.rollouts.run(started.id)
  assert.equal(again.status, 'waiting', 'run without a go keeps waiting')

  // Halted while waiting: run does nothing, resume gives the go.
  const halted = await next.tenancy.rollouts.halt(started.id, 'the canary looked wrong')
  assert.deepEqual([halted.status, halted.haltReason], ['halted', 'the canary looked wrong'])
  assert.equal((await next.tenancy.rollouts.run(started.id)).counts.pending, 5)

  const done = await next.tenancy.rollouts.resume(started.id)
  assert.equal(done.status, 'done')
  assert.equal(done.counts.done, 8)
  assert.deepEqual(await markerRuns(next, tenants), [1, 1, 1, 1, 1, 1, 1, 1])
  const states = await next.tenancy.migrationStates(tenants.map((x) => x.key))
  assert.deepEqual([...states.values()].filter((s) => s.pending.length > 0), [], 'the central record shows every tenant up to date')

  // Nothing left to do: every tenant is skipped from the central record, without connecting.
  const noop = await next.tenancy.rollouts.start({})
  assert.equal(noop.counts.skipped, 8)
  assert.equal((await next.tenancy.rollouts.run(noop.id)).status, 'done')
  await assert.rejects(next.tenancy.rollouts.resume(noop.id), { code: 'FST_TENANCY_ROLLOUT_FINISHED' })
  await assert.rejects(next.tenancy.rollouts.halt(done.id), { code: 'FST_TENANCY_ROLLOUT_FINISHED' })
  await assert.rejects(next.tenancy.rollouts.get('999999'), { code: 'FST_TENANCY_ROLLOUT_NOT_FOUND' })
  await assert.rejects(next.tenancy.rollouts.get('nope'), { code: 'FST_TENANCY_ROLLOUT_NOT_FOUND' })
  const list = await next.tenancy.rollouts.list({ page: 1, perPage: 1 })
  assert.equal(list.total, 2)
  assert.deepEqual(list.rollouts.map((r) => r.id), [noop.id])
})

test('10 planted failures with maxFailures 5 halt the rollout at the 5th, the rest pending; bad options are refused', async (t) => {
  const { app, central } = await buildApp(t)
  const tenants = await makeTenants(app, 20, 'm')
  const sorted = [...tenants].sort((a, b) => a.identifier.localeCompare(b.identifier))
  // Every other tenant in identifier order fails: the 5th failure is the 9th tenant.
  for (const [i, tenant] of sorted.entries()) if (i % 2 === 0) await plantFailure(app, tenant)
  const { app: next } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const rollout = await next.tenancy.rollouts.start({ maxFailures: 5, concurrency: 1 })
  const halted = await next.tenancy.rollouts.run(rollout.id)
  assert.equal(halted.status, 'halted')
  assert.equal(halted.haltReason, 'the error budget is spent: 5 of at most 5 failures allowed (maxFailures 5)')
  assert.deepEqual([halted.counts.failed, halted.counts.done, halted.counts.pending, halted.counts.running], [5, 4, 11, 0])
  assert.equal(halted.failed.length, 5)
  for (const f of halted.failed) assert.match(f.error, /rollout_marker.*already exists/)
  assert.deepEqual(await markerRuns(next, sorted), sorted.map((_, i) => i % 2 === 1 && i < 9 ? 1 : 0))
  // The Fleet page and tenants:status show each failed tenant behind, with the reason.
  const states = await next.tenancy.migrationStates(halted.failed.map((f) => f.key))
  for (const f of halted.failed) assert.match(String(states.get(f.key)?.error), /already exists/, f.identifier)

  await assert.rejects(next.tenancy.rollouts.start({ maxFailures: '0%' }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
  await assert.rejects(next.tenancy.rollouts.start({ maxFailures: 'lots' }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
  await assert.rejects(next.tenancy.rollouts.start({ order: 'color' as 'name' }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
  await assert.rejects(next.tenancy.rollouts.start({ canary: ['nobody'] }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
  await assert.rejects(next.tenancy.rollouts.start({ hosts: ['mars'] }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
  await assert.rejects(next.tenancy.rollouts.start({ canaryWaitMs: 10 }), { code: 'FST_TENANCY_INVALID_ROLLOUT' })
})

test('two instances resuming the same rollout at once never both run a tenant', async (t) => {
  const { app, central } = await buildApp(t)
  const tenants = await makeTenants(app, 12, 'p')
  const { app: one } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const { app: two } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const rollout = await one.tenancy.rollouts.start({ concurrency: 3 })
  const ran: Array<Array<RolloutTenantResult>> = [[], []]
  const outcomes = await Promise.allSettled([one, two].map(async (app, i) =>
    await app.tenancy.rollouts.resume(rollout.id, { onResult: (r) => { ran[i]?.push(r) } })))
  for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code?: string }).code, 'FST_TENANCY_ROLLOUT_BUSY')
  assert.ok(outcomes.some((o) => o.status === 'fulfilled'))
  const keys = [...(ran[0] ?? []), ...(ran[1] ?? [])].map((r) => r.key)
  assert.equal(keys.length, 12, 'each tenant ran once, in one instance or the other')
  assert.equal(new Set(keys).size, 12)
  assert.deepEqual(await markerRuns(one, tenants), tenants.map(() => 1))
  assert.equal((await two.tenancy.rollouts.get(rollout.id)).status, 'done')
})

test('a canary counts only tenants that will run (up-to-date ones would leave it empty and the fleet ungated); a go given while another process waits out --canary-wait reaches it', async (t) => {
  const { app, central } = await buildApp(t)
  const tenants = await makeTenants(app, 8, 'k')
  const { app: next } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const first = await next.tenancy.rollouts.start({ tenants: ['k0', 'k1', 'k2'] })
  assert.equal((await next.tenancy.rollouts.run(first.id)).status, 'done')

  // The three up to date are skipped; the canary is the next three.
  const canaried = await next.tenancy.rollouts.start({ canary: 3 })
  assert.deepEqual(canaried.waves.map((w) => [w.name, w.counts.pending, w.counts.skipped]), [['canary', 3, 0], ['rollout', 2, 3]])
  assert.equal((await next.tenancy.rollouts.run(canaried.id)).status, 'waiting')
  assert.deepEqual(await markerRuns(next, tenants), [1, 1, 1, 1, 1, 1, 0, 0])
  await assert.rejects(next.tenancy.rollouts.start({ canary: ['k0', 'k1'] }), { code: 'FST_TENANCY_INVALID_ROLLOUT', message: /every canary tenant named is up to date already/ })
  await next.tenancy.rollouts.halt(canaried.id)

  // One process runs a rollout that waits out a long canary wait; another gives the go, and the first goes on.
  const { app: other } = await buildApp(t, { tenantMigrations: withMarker }, () => {}, central)
  const fresh = await makeTenants(app, 3, 'w')
  const waiting = await next.tenancy.rollouts.start({ tenants: fresh.map((x) => x.identifier), canary: 1, canaryWaitMs: 600_000 })
  const running = next.tenancy.rollouts.run(waiting.id)
  await until(async () => (await other.tenancy.rollouts.get(waiting.id)).status, { is: (s) => s === 'waiting', what: 'the rollout waits after its canary' })
  const given = await other.tenancy.rollouts.resume(waiting.id)
  assert.ok(given.status === 'waiting' || given.status === 'running' || given.status === 'done', given.status)
  const done = await running
  assert.equal(done.status, 'done')
  assert.deepEqual(await markerRuns(next, fresh), [1, 1, 1])
})
