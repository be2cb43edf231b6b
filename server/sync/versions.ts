import type { Run } from './run.js'
import { ident, type SyncedResource } from './resource.js'

// Every statement on the central versions: the sequence ordering all synced
// changes and the newest version of each central row.

/**
 * Takes a new version from the central sequence and records it as the
 * central row's newest, in one statement inside the running central
 * transaction (the caller holds the row's lock, so versions only grow).
 */
export async function bumpVersion (run: Run, r: SyncedResource, globalId: string): Promise<string> {
  const t = r.centralTables
  const rows = await run(`insert into ${t.fastify_tenancy_sync_state} (resource, global_id, version) values (?, ?, nextval(${t.literal('fastify_tenancy_sync_version')}))
    on conflict (resource, global_id) do update set version = excluded.version returning version::text as v`, [r.name, globalId])
  return String(rows[0]?.v)
}

/** Forgets the version of a central row that is deleted. */
export async function forgetVersion (run: Run, r: SyncedResource, globalId: string): Promise<void> {
  await run(`delete from ${r.centralTables.fastify_tenancy_sync_state} where resource = ? and global_id = ?`, [r.name, globalId])
}

/** A central row as it is now, with its version and whether tenant `tenantKey` is mapped to it; undefined when it is gone. */
export async function centralRowFor (
  read: Run, r: SyncedResource, globalId: string, tenantKey: string
): Promise<{ row: Record<string, unknown>, version: string, mapped: boolean } | undefined> {
  const [found] = await read(
    `select t.*, coalesce(s.version, 0)::text as "__version", ${r.mapping.existsSql('t', r.central.globalIdColumn)} as "__mapped"
     from ${r.central.sqlTable} t
     left join ${r.centralTables.fastify_tenancy_sync_state} s on s.resource = ? and s.global_id = t.${ident(r.central.globalIdColumn)}
     where t.${ident(r.central.globalIdColumn)} = ?`,
    [...r.mapping.existsBind(tenantKey), r.name, globalId])
  if (found === undefined) return undefined
  const { __version: version, __mapped: mapped, ...row } = found
  return { row, version: String(version), mapped: mapped === true }
}
