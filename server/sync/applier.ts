import type { Connection } from '@mikro-orm/core'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { Tenant } from '../tenant.js'
import type { SyncChange } from './change.js'
import { ident, type ResourceSide, type SyncedResource } from './resource.js'

type Run = (sql: string, params?: unknown[]) => Promise<Array<Record<string, any>>>

async function inTransaction<T> (conn: Connection, fn: (run: Run) => Promise<T>): Promise<T> {
  return await conn.transactional(async (trx) => await fn(async (sql, params = []) => await conn.execute(sql, params as any[], 'all', trx)))
}

/**
 * Takes the newest version for a resource in one database, inside the
 * caller's transaction: true when `version` is newer than what that database
 * has applied (and records it), false when it already has this or a newer one.
 */
async function takeVersion (run: Run, resource: string, globalId: string, version: string): Promise<boolean> {
  const rows = await run(
    `insert into fastify_tenancy_sync_state as s (resource, global_id, version) values (?, ?, ?)
     on conflict (resource, global_id) do update set version = excluded.version
     where s.version < excluded.version
     returning version`, [resource, globalId, version])
  return rows.length === 1
}

function assignments (columns: string[]): string {
  return columns.map((c) => `${ident(c)} = ?`).join(', ')
}

/**
 * Applies synced changes to the central database and the tenant copies. Every
 * write goes through the version check, so applying a change twice, or an
 * older change after a newer one, writes nothing: jobs can be retried and run
 * in any order. The syncer writes with plain SQL, so its own writes never
 * trigger syncing again.
 */
export interface ApplierParts {
  orm: MikroORM
  connections: Pick<TenantConnections, 'lease'>
  /** A tenant by key (cached is fine: a deleted tenant's copy is skipped either way). */
  byKey: (key: string) => Promise<Tenant | null>
  targetOf: TargetOf
}

export class SyncApplier {
  private readonly parts: ApplierParts
  private readonly resources: Map<string, SyncedResource>

  constructor (parts: ApplierParts, resources: Map<string, SyncedResource>) {
    this.parts = parts
    this.resources = resources
  }

  async apply (change: SyncChange): Promise<void> {
    const resource = this.resources.get(change.resource)
    if (resource === undefined) throw new Error(`No synced resource is named "${change.resource}".`)
    switch (change.op) {
      case 'update': return await this.update(resource, change)
      case 'create': return await this.createFromTenant(resource, change)
      case 'attach': return await this.attach(resource, change)
      case 'detach': return await this.detach(resource, change)
      case 'delete': return await this.delete(resource, change)
    }
  }

  /** Synced attributes changed on the origin: the central row and every other copy take them. */
  private async update (resource: SyncedResource, change: SyncChange): Promise<void> {
    const values = change.values ?? {}
    if (change.origin !== null) {
      await this.writeSynced(this.central(), resource, resource.central, change, this.fromSide(resource, resource.tenant, resource.central, values))
    }
    const centralValues = change.origin === null ? values : this.fromSide(resource, resource.tenant, resource.central, values)
    for (const key of await this.tenantsOf(resource, change.globalId)) {
      if (key === change.origin) continue
      await this.onTenant(key, async (conn) => {
        await this.writeSynced(conn, resource, resource.tenant, change, this.fromSide(resource, resource.central, resource.tenant, centralValues))
      })
    }
  }

  /** A tenant made a copy: the central row is made 1:1 when missing, the pivot row added, other copies updated. */
  private async createFromTenant (resource: SyncedResource, change: SyncChange): Promise<void> {
    const origin = change.origin as string
    const row = change.values ?? {}
    await inTransaction(this.central(), async (run) => {
      const exists = await run(`select 1 from ${ident(resource.central.table)} where ${ident(resource.central.globalIdColumn)} = ?`, [change.globalId])
      if (exists.length === 0) {
        const copy = this.copyRow(row, resource.tenant, resource.central, resource.definition.creationDefaults?.central)
        const cols = Object.keys(copy)
        await run(`insert into ${ident(resource.central.table)} (${cols.map(ident).join(', ')}) values (${cols.map(() => '?').join(', ')}) on conflict do nothing`, cols.map((c) => copy[c]))
      }
      await run(`insert into ${ident(resource.pivot.table)} (${ident(resource.pivot.tenantColumn)}, ${ident(resource.pivot.globalIdColumn)}) values (?, ?) on conflict do nothing`, [origin, change.globalId])
    })
    // The central row (new or old) and the other copies take the synced attributes.
    const synced: Record<string, unknown> = {}
    resource.tenant.syncedColumns.forEach((c) => { synced[c] = row[c] })
    await this.update(resource, { ...change, op: 'update', values: synced })
  }

  /** A pivot row was added: the whole central row is copied into the tenant, or the synced attributes of its copy updated. */
  private async attach (resource: SyncedResource, change: SyncChange): Promise<void> {
    const tenantKey = change.tenants?.[0] as string
    const found = await inTransaction(this.central(), async (run) => {
      const rows = await run(`select * from ${ident(resource.central.table)} where ${ident(resource.central.globalIdColumn)} = ?`, [change.globalId])
      const state = await run('select version from fastify_tenancy_sync_state where resource = ? and global_id = ?', [resource.name, change.globalId])
      return { row: rows[0], version: String(state[0]?.version ?? change.version) }
    })
    if (found.row === undefined) return
    const centralRow = found.row
    await this.onTenant(tenantKey, async (conn) => {
      await inTransaction(conn, async (run) => {
        const exists = await run(`select 1 from ${ident(resource.tenant.table)} where ${ident(resource.tenant.globalIdColumn)} = ?`, [change.globalId])
        if (exists.length === 0) {
          const copy = this.copyRow(centralRow, resource.central, resource.tenant, resource.definition.creationDefaults?.tenant)
          const cols = Object.keys(copy)
          await run(`insert into ${ident(resource.tenant.table)} (${cols.map(ident).join(', ')}) values (${cols.map(() => '?').join(', ')})`, cols.map((c) => copy[c]))
          await run(`insert into fastify_tenancy_sync_state (resource, global_id, version) values (?, ?, ?)
            on conflict (resource, global_id) do update set version = greatest(fastify_tenancy_sync_state.version, excluded.version)`, [resource.name, change.globalId, found.version])
          return
        }
        if (!await takeVersion(run, resource.name, change.globalId, found.version)) return
        const values = resource.central.syncedColumns.map((c) => centralRow[c])
        await run(`update ${ident(resource.tenant.table)} set ${assignments(resource.tenant.syncedColumns)} where ${ident(resource.tenant.globalIdColumn)} = ?`, [...values, change.globalId])
      })
    })
  }

  /** A pivot row was removed: the tenant's copy goes. */
  private async detach (resource: SyncedResource, change: SyncChange): Promise<void> {
    for (const key of change.tenants ?? []) await this.deleteCopy(resource, key, change.globalId)
  }

  /** Central delete: every copy goes (the pivot rows went with the central row). Tenant delete: only that tenant's pivot row goes. */
  private async delete (resource: SyncedResource, change: SyncChange): Promise<void> {
    if (change.origin === null) {
      for (const key of change.tenants ?? []) await this.deleteCopy(resource, key, change.globalId)
      return
    }
    await this.central().execute(
      `delete from ${ident(resource.pivot.table)} where ${ident(resource.pivot.tenantColumn)} = ? and ${ident(resource.pivot.globalIdColumn)} = ?`,
      [change.origin, change.globalId], 'run')
  }

  private async deleteCopy (resource: SyncedResource, tenantKey: string, globalId: string): Promise<void> {
    await this.onTenant(tenantKey, async (conn) => {
      await inTransaction(conn, async (run) => {
        await run(`delete from ${ident(resource.tenant.table)} where ${ident(resource.tenant.globalIdColumn)} = ?`, [globalId])
        await run('delete from fastify_tenancy_sync_state where resource = ? and global_id = ?', [resource.name, globalId])
      })
    })
  }

  /** Writes synced column values into one database's row, if the change is newer than what it has. */
  private async writeSynced (conn: Connection, resource: SyncedResource, target: ResourceSide, change: SyncChange, values: Record<string, unknown>): Promise<void> {
    await inTransaction(conn, async (run) => {
      const exists = await run(`select 1 from ${ident(target.table)} where ${ident(target.globalIdColumn)} = ?`, [change.globalId])
      if (exists.length === 0) return
      if (!await takeVersion(run, resource.name, change.globalId, change.version)) return
      await run(`update ${ident(target.table)} set ${assignments(target.syncedColumns)} where ${ident(target.globalIdColumn)} = ?`,
        [...target.syncedColumns.map((c) => values[c]), change.globalId])
    })
  }

  /** Renames synced column values from one side's columns to the other's. */
  private fromSide (resource: SyncedResource, from: ResourceSide, to: ResourceSide, values: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    resource.attributes.forEach((_, i) => { out[to.syncedColumns[i] as string] = values[from.syncedColumns[i] as string] })
    return out
  }

  /** A whole row from one side as the other side's columns (properties both have), plus creation defaults. */
  private copyRow (row: Record<string, unknown>, from: ResourceSide, to: ResourceSide, defaults?: (source: Record<string, unknown>) => Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const [prop, column] of from.columns) {
      const targetColumn = to.columns.get(prop)
      if (targetColumn !== undefined && row[column] !== undefined) out[targetColumn] = row[column]
    }
    if (defaults !== undefined) {
      for (const [prop, value] of Object.entries(defaults(row))) {
        const column = to.columns.get(prop) ?? prop
        ident(column)
        out[column] = value
      }
    }
    return out
  }

  private central (): Connection {
    return this.parts.orm.em.getConnection()
  }

  private async tenantsOf (resource: SyncedResource, globalId: string): Promise<string[]> {
    const rows = await this.central().execute(
      `select ${ident(resource.pivot.tenantColumn)} as key from ${ident(resource.pivot.table)} where ${ident(resource.pivot.globalIdColumn)} = ? order by 1`,
      [globalId], 'all')
    return rows.map((r: { key: string }) => r.key)
  }

  /** Runs `fn` on a tenant's database connection; a tenant that no longer exists is skipped. */
  private async onTenant (key: string, fn: (conn: Connection) => Promise<void>): Promise<void> {
    const tenant = await this.parts.byKey(key)
    if (tenant === null) return
    const lease = this.parts.connections.lease(this.parts.targetOf(tenant))
    try {
      await fn(lease.em.getConnection())
    } finally {
      lease.release()
    }
  }
}
