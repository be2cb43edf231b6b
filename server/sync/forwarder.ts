import type { SyncChange } from './change.js'
import type { Run } from './run.js'
import type { SyncEvent } from '../events/sync-events.js'
import { copyRow, fromSide } from './applier.js'
import { lockCentralRow, updateDeliveries } from './central-rows.js'
import { receivedFirst } from './inbox.js'
import { ident, type SyncedResource } from './resource.js'
import { bumpVersion } from './versions.js'

/** What forwarding one tenant change did centrally: deliveries to record and central events to fire after commit. */
export interface Forwarded {
  deliveries: SyncChange[]
  events: SyncEvent[]
}

/**
 * Applies a change made in a tenant database to the central database, inside
 * the caller's central transaction, and returns the deliveries for every
 * tenant that has the resource (its origin included: a copy that took an
 * older change meanwhile gets its own value back; an equal copy writes
 * nothing). The change takes its version here, after the central row's lock,
 * so versions follow the order in which changes reach the central row.
 */
export async function forwardChange (run: Run, r: SyncedResource, change: SyncChange): Promise<Forwarded> {
  const origin = change.origin as string
  const events: SyncEvent[] = []
  const event = (name: SyncEvent['name']): void => { events.push({ name, resource: r.name, globalId: change.globalId, tenant: null, origin }) }
  // Applied once: a change forwarded again after a crash between the two commits is skipped.
  if (change.id !== undefined && !await receivedFirst(run, r.centralTables, change.id)) return { deliveries: [], events }
  const where = `${ident(r.central.globalIdColumn)} = ?`
  const [row] = await lockCentralRow(run, r, change.globalId)

  if (change.op === 'delete') {
    // A tenant deleted its copy: only its mapping row goes; the central row and other copies stay.
    const [sql, params] = r.mapping.deleteSql(origin, change.globalId)
    if ((await run(sql, params)).length > 0) event('sync.detached')
    return { deliveries: [], events }
  }

  const values = change.values ?? {}
  if (change.op === 'create') {
    if (row === undefined) {
      const copy = copyRow(values, r.tenant, r.central, r.definition.creationDefaults?.central)
      const cols = Object.keys(copy)
      const made = await run(`insert into ${r.central.sqlTable} (${cols.map(ident).join(', ')}) values (${cols.map(() => '?').join(', ')}) on conflict do nothing returning 1 as n`, cols.map((c) => copy[c]))
      if (made.length > 0) event('sync.saved')
    }
    const [sql, params] = r.mapping.insertSql(origin, change.globalId)
    await run(sql, params)
  } else if (row === undefined) {
    // The central row is gone (deleted centrally meanwhile): nothing to sync.
    return { deliveries: [], events }
  }

  const synced = fromSide(r, r.tenant, r.central, values)
  const cols = Object.keys(synced)
  if (cols.length > 0) {
    const updated = await run(
      `update ${r.central.sqlTable} set ${cols.map((c) => `${ident(c)} = ?`).join(', ')}
       where ${where} and (${cols.map(ident).join(', ')}, null) is distinct from (${cols.map(() => '?').join(', ')}, null) returning 1 as n`,
      [...cols.map((c) => synced[c]), change.globalId, ...cols.map((c) => synced[c])])
    if (updated.length > 0 && events.length === 0) event('sync.saved')
  }
  const version = await bumpVersion(run, r, change.globalId)
  return { deliveries: await updateDeliveries(run, r, change.globalId, origin, version), events }
}
