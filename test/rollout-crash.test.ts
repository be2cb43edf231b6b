import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { pathToFileURL } from 'node:url'
import { buildApp } from './helpers/app.js'
import { makeTenants } from './helpers/tenants.js'
import { markerRuns } from './helpers/rollouts.js'
import { BIN, ROOT, run, tenantLines, type TenantLine } from './helpers/cli.js'
import { sql, type CentralDatabase } from './helpers/database.js'
import { until } from './helpers/poll.js'

/** A config file for the new deploy: the test app's tables and the marker migration. */
async function nextDeployConfig (central: CentralDatabase, strategy: 'database' | 'schema'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ft-rollout-'))
  const file = join(dir, 'tenancy.config.mjs')
  const schema = pathToFileURL(join(ROOT, 'test', 'helpers', 'tenant-schema.ts')).href
  const rollouts = pathToFileURL(join(ROOT, 'test', 'helpers', 'rollouts.ts')).href
  await writeFile(file, `import { TEST_TENANT_SCHEMA } from ${JSON.stringify(schema)}\nimport { withMarker } from ${JSON.stringify(rollouts)}\nexport default { ...TEST_TENANT_SCHEMA, tenantMigrations: withMarker, database: { url: ${JSON.stringify(central.url)}, prefix: ${JSON.stringify(central.prefix)} }, provisioning: { spares: 0 }, strategy: ${JSON.stringify(strategy)} }\n`)
  return file
}

/** Runs tenants:migrate and kills it with SIGKILL once `after` tenants have finished; returns the lines it printed. */
async function migrateKilledAfter (config: string, after: number): Promise<{ lines: Array<Record<string, unknown>>, signal: string | null }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--config', config, 'tenants:migrate', '--concurrency', '4', '--lease', '2s', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const lines: Array<Record<string, unknown>> = []
    let buffer = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      buffer += String(d)
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (line.trim() === '') continue
        lines.push(JSON.parse(line) as Record<string, unknown>)
        if (lines.filter((l) => l.type === 'tenant').length === after) child.kill('SIGKILL')
      }
    })
    child.stderr.on('data', (d) => { stderr += String(d) })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (signal === null) reject(new Error(`the rollout ended before it was killed (exit ${String(code)}): ${stderr}`))
      else resolve({ lines, signal })
    })
  })
}

for (const strategy of ['database', 'schema'] as const) {
  // Strategy schema: the schema host's migrator keeps its connections from tenant to tenant (migrator-slots.ts).
  test(`strategy ${strategy}: a rollout over 200 tenants killed with SIGKILL mid-way is resumed by a second process: every tenant migrated exactly once`, { timeout: 900_000 }, async (t) => {
    await killedAndResumed(t, strategy)
  })
}

async function killedAndResumed (t: TestContext, strategy: 'database' | 'schema'): Promise<void> {
  const { app, central } = await buildApp(t, { provisioning: { spares: 0 }, strategy })
  const tenants = await makeTenants(app, 200, 'k')
  const config = await nextDeployConfig(central, strategy)

  const killed = await migrateKilledAfter(config, 60)
  assert.equal(killed.signal, 'SIGKILL')
  const id = String(killed.lines.find((l) => l.type === 'rollout')?.id)
  const before = killed.lines.filter((l): l is TenantLine & Record<string, unknown> => l.type === 'tenant')
  const ledger = async (): Promise<Record<string, number>> => Object.fromEntries((await sql<{ status: string, n: number }>(central.url,
    'select status, count(*)::int as n from tenancy.tenant_rollout_tenants where rollout_id = $1 group by status', [id])).map((r) => [r.status, r.n]))
  const atKill = await ledger()
  assert.ok((atKill.pending ?? 0) > 0, `tenants were left pending: ${JSON.stringify(atKill)}`)
  assert.ok((atKill.done ?? 0) >= 60, 'what finished before the kill is recorded')
  assert.equal((await sql(central.url, 'select status from tenancy.tenant_rollouts where id = $1', [id]))[0]?.status, 'running')

  // The dead runner's lease (2 s) is still held at first: a resume is refused until it expires, then takes over.
  const resume = async (): Promise<Awaited<ReturnType<typeof run>>> => await run(['--config', config, 'tenants:migrate', '--resume', id, '--json'])
  let resumed = await resume()
  if (resumed.code !== 0) {
    assert.match(resumed.stderr + resumed.stdout, /FST_TENANCY_ROLLOUT_BUSY/, JSON.stringify(resumed))
    resumed = await until(resume, { is: (r) => r.code === 0, everyMs: 250, timeoutMs: 60_000, what: 'a resume takes the rollout over once the dead runner\'s lease has expired' })
  }
  const after = tenantLines(resumed.stdout)
  const doneBefore = new Set(before.filter((l) => l.status === 'done').map((l) => l.key))
  assert.deepEqual(after.filter((l) => doneBefore.has(l.key)).map((l) => l.identifier), [], 'no tenant the first process finished ran again')
  // A tenant the first process recorded done but was killed before printing is in neither list: the ledger below is the count.
  assert.ok(doneBefore.size + after.length <= 200, 'no tenant printed as done by both processes')
  assert.deepEqual(await ledger(), { done: 200 })
  assert.equal((await sql(central.url, 'select status from tenancy.tenant_rollouts where id = $1', [id]))[0]?.status, 'done')
  // The proof: each tenant's own migrations table lists the new migration exactly once.
  const runs = await markerRuns(app, tenants)
  assert.deepEqual(runs.filter((n) => n !== 1), [], 'every tenant has the migration, once')
  // And the central record knows: no tenant is behind.
  const behind = await sql(central.url, "select count(*)::int as n from tenancy.tenant_migration_states where not ('Migration20261206000002_marker' = any(executed))")
  assert.equal(behind[0]?.n, 0)
}
