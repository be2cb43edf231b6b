import { test } from 'node:test'
import assert from 'node:assert/strict'
import { serverUrl } from './helpers/database.js'
import { HOSTILE_ITEMS, mixFailures, printMix, runHostileMix } from './helpers/hostile-mix.js'
import { seedFor } from './helpers/random.js'

// `npm run soak` runs the same mix at 100,000 requests.
test('a hostile tenant among 200 in strategy shared, 10,000 interleaved requests through PgBouncer in transaction mode', { timeout: 600_000 }, async (t) => {
  const counts = await runHostileMix({ serverUrl: serverUrl(), requests: 10_000, tenants: 200, seed: seedFor(t, 24) })
  t.diagnostic(printMix(counts))

  await t.test('every hostile item ran', () => {
    for (const item of HOSTILE_ITEMS) assert.ok(counts.hostile[item].tries > 0, item)
  })

  await t.test('the hostile tenant makes no temporary table, takes no other role, cancels nothing, and learns no other tenant\'s ids, emails, statement text or tenant value', () => {
    const through = Object.fromEntries(HOSTILE_ITEMS.map((i) => [i, counts.hostile[i].through]))
    assert.deepEqual(
      { 'temp-shadow': through['temp-shadow'], 'set-role': through['set-role'], 'stat-replay': through['stat-replay'], cancel: through.cancel, 'explicit-id': through['explicit-id'], 'foreign-fk': through['foreign-fk'], 'unique-probe': through['unique-probe'] },
      { 'temp-shadow': 0, 'set-role': 0, 'stat-replay': 0, cancel: 0, 'explicit-id': 0, 'foreign-fk': 0, 'unique-probe': 0 }
    )
    for (const item of HOSTILE_ITEMS) assert.deepEqual([item, counts.hostile[item].foreignRows, counts.hostile[item].revealed], [item, 0, 0])
  })

  await t.test('no write lands in a wrong tenant or is lost, no row points at another tenant\'s, and a tenant the hostile one aimed at is deleted', () => {
    assert.deepEqual(
      { wrong: counts.wrongTenantWrites, lost: counts.lostWrites, crossing: counts.crossTenantReferences, deleted: counts.victimDeleted },
      { wrong: 0, lost: 0, crossing: 0, deleted: true }
    )
  })

  await t.test('routes that use the tenant EntityManager as documented see no foreign row, and only the cursor route gets 5xx', () => {
    // em.getKnex() (the /knex route) goes around the tenant prefix; held cursors break /export until the connection reset lands.
    assert.deepEqual(Object.keys(counts.foreignByRoute).filter((r) => r !== 'knex'), [])
    assert.deepEqual(Object.keys(counts.otherTenants5xxByRoute).filter((r) => r !== 'export'), [])
  })

  await t.test('0 foreign rows, 0 writes in a wrong tenant, 0 5xx for every other tenant', {
    todo: 'held cursors (42P03 on /export) and session-level settings (seen by em.getKnex()) still cross pooled connections until the per-transaction proof and the connection reset of issue 24 points 1-2 land'
  }, () => {
    assert.deepEqual(mixFailures(counts), [])
  })
})
