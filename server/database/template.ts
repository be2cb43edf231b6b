import { createHash } from 'node:crypto'
import { tenantMigrations } from '../../migrations/tenant/index.js'
import { assertSafeName, quoteIdent } from './names.js'
import { createDatabase, dropDatabase, migrateTenantDatabase, withServer } from './tenant-database.js'

/** A fingerprint of the tenant migrations; the template is rebuilt when it changes. */
export function migrationsFingerprint (): string {
  return createHash('sha256').update(tenantMigrations.map((m) => m.name).join('\n')).digest('hex').slice(0, 16)
}

const building = new Map<string, Promise<void>>()
/** Templates this process has seen at the current fingerprint (the fingerprint cannot change while it runs). */
const ready = new Set<string>()

/** Forget that a template was ready (after cloning it failed, say). */
export function forgetTemplate (serverUrl: string, name: string): void {
  ready.delete(`${serverUrl}#${name}`)
}

/**
 * Makes sure database `name` on the server is a template at the newest tenant
 * migration: built once (migrations run on it), rebuilt when the list of
 * migrations changes. Its comment holds the fingerprint it was built for.
 */
export async function ensureTemplate (serverUrl: string, name: string): Promise<void> {
  assertSafeName(name)
  const id = `${serverUrl}#${name}`
  if (ready.has(id)) return
  let pending = building.get(id)
  if (pending === undefined) {
    pending = buildTemplate(serverUrl, name).then(() => { ready.add(id) }).finally(() => building.delete(id))
    building.set(id, pending)
  }
  await pending
}

async function buildTemplate (serverUrl: string, name: string): Promise<void> {
  // Other processes (app instances, test files) may build the same template: one at a time.
  await withServer(serverUrl, async (lock) => {
    await lock.query('select pg_advisory_lock(hashtext($1))', [name])
    try {
      await buildTemplateLocked(serverUrl, name)
    } finally {
      await lock.query('select pg_advisory_unlock(hashtext($1))', [name])
    }
  })
}

async function buildTemplateLocked (serverUrl: string, name: string): Promise<void> {
  const want = migrationsFingerprint()
  const have = await withServer(serverUrl, async (c) => {
    const r = await c.query('select shobj_description(oid, \'pg_database\') as fingerprint from pg_database where datname = $1', [name])
    return r.rowCount === 0 ? null : (r.rows[0].fingerprint as string | null)
  })
  if (have === want) return
  // Build under a scratch name and swap it in, so a half-built template is never cloned.
  const scratch = assertSafeName(`${name.slice(0, 50)}_build`)
  await dropDatabase(serverUrl, scratch)
  await createDatabase(serverUrl, scratch)
  await migrateTenantDatabase(serverUrl, scratch)
  await withServer(serverUrl, async (c) => {
    await c.query(`drop database if exists ${quoteIdent(name)} with (force)`)
    await c.query(`alter database ${quoteIdent(scratch)} rename to ${quoteIdent(name)}`)
    await c.query(`comment on database ${quoteIdent(name)} is '${want}'`)
    await c.query(`alter database ${quoteIdent(name)} with is_template true`)
  })
}
