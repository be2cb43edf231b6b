import { assertSafeName, quoteIdent } from './names.js'
import { createDatabase, dropDatabase, withServer } from './tenant-database.js'
import type { TenantMigrator } from './tenant-migrator.js'

const building = new Map<string, Promise<void>>()
/** Templates this process has seen at a fingerprint (server, name and fingerprint). */
const ready = new Set<string>()

/** Forget that a template was ready (after cloning it failed, say). */
export function forgetTemplate (serverUrl: string, name: string): void {
  for (const id of ready) if (id.startsWith(`${serverUrl}#${name}#`)) ready.delete(id)
}

/**
 * Makes sure database `name` on the server is a template at the newest tenant
 * migration: built once (the migrations run on it), rebuilt when the list of
 * migrations changes (the app adds one, or starts syncing). Its comment holds
 * the fingerprint it was built for. Returns that fingerprint.
 */
export async function ensureTemplate (serverUrl: string, name: string, migrator: TenantMigrator): Promise<string> {
  assertSafeName(name)
  const fingerprint = await migrator.fingerprint()
  const id = `${serverUrl}#${name}#${fingerprint}`
  if (ready.has(id)) return fingerprint
  let pending = building.get(id)
  if (pending === undefined) {
    pending = buildTemplate(serverUrl, name, migrator, fingerprint).then(() => { ready.add(id) }).finally(() => building.delete(id))
    building.set(id, pending)
  }
  await pending
  return fingerprint
}

async function buildTemplate (serverUrl: string, name: string, migrator: TenantMigrator, fingerprint: string): Promise<void> {
  // Other processes (app instances, test files) may build the same template: one at a time.
  await withServer(serverUrl, async (lock) => {
    await lock.query('select pg_advisory_lock(hashtext($1))', [name])
    try {
      await buildTemplateLocked(serverUrl, name, migrator, fingerprint)
    } finally {
      await lock.query('select pg_advisory_unlock(hashtext($1))', [name])
    }
  })
}

async function buildTemplateLocked (serverUrl: string, name: string, migrator: TenantMigrator, want: string): Promise<void> {
  const have = await withServer(serverUrl, async (c) => {
    const r = await c.query('select shobj_description(oid, \'pg_database\') as fingerprint from pg_database where datname = $1', [name])
    return r.rowCount === 0 ? null : (r.rows[0].fingerprint as string | null)
  })
  if (have === want) return
  // Build under a scratch name and swap it in, so a half-built template is never cloned.
  const scratch = assertSafeName(`${name.slice(0, 50)}_build`)
  await dropDatabase(serverUrl, scratch)
  await createDatabase(serverUrl, scratch)
  await migrator.upDatabase(serverUrl, scratch)
  await withServer(serverUrl, async (c) => {
    // A template database cannot be dropped while it is one (the older template, when the migrations changed).
    if (have !== null || (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1) {
      await c.query(`alter database ${quoteIdent(name)} with is_template false`)
    }
    await c.query(`drop database if exists ${quoteIdent(name)} with (force)`)
    await c.query(`alter database ${quoteIdent(scratch)} rename to ${quoteIdent(name)}`)
    await c.query(`comment on database ${quoteIdent(name)} is '${want}'`)
    await c.query(`alter database ${quoteIdent(name)} with is_template true`)
  })
}
