import type { MikroORM } from '@mikro-orm/postgresql'
import { centralTables, type CentralTables } from '../../database/central-schema.js'
import { centralSql } from '../../database/central-sql.js'

/** Who did it: a signed-in admin, or null for the system (CLI, jobs). */
export interface AuditActor {
  id: string
  email: string
}

export interface AuditRecord {
  actor: AuditActor | null
  /** `<area>.<verb>`, e.g. `tenant.suspend`, `cluster.parent`. */
  action: string
  tenant?: { key: string, identifier: string } | null
  cluster?: { id: string, name: string } | null
  /** What changed, as JSON (`{ field: { from, to } }` or a short summary); never a secret. */
  change?: Record<string, unknown>
}

export interface AuditEntry {
  id: number
  at: Date
  actorId: string | null
  actorEmail: string
  action: string
  tenantKey: string | null
  tenantIdentifier: string | null
  clusterId: string | null
  clusterName: string | null
  change: Record<string, unknown>
}

export interface AuditQuery {
  actorEmail?: string
  /** Exactly this action, or every action starting with it when it ends with a dot (`tenant.`). */
  action?: string
  tenantKey?: string
  clusterId?: string
  /**
   * False for an admin without `manage_tenant_groups`: entries about clusters
   * are left out in the query (so counts agree with what is shown) and
   * cluster fields are taken out of the others' changes.
   */
  withClusters?: boolean
  page?: number
  pageSize?: number
}

/** A change's field that names a cluster (`clusterId`, `cluster`). */
const isClusterField = (field: string): boolean => field.toLowerCase().includes('cluster')

const SYSTEM = 'system'

function toEntry (r: Record<string, any>): AuditEntry {
  return {
    id: Number(r.id),
    at: new Date(r.at),
    actorId: r.actor_id,
    actorEmail: r.actor_email,
    action: r.action,
    tenantKey: r.tenant_key,
    tenantIdentifier: r.tenant_identifier,
    clusterId: r.cluster_id,
    clusterName: r.cluster_name,
    change: (typeof r.change === 'string' ? JSON.parse(r.change) : r.change) ?? {}
  }
}

/**
 * The audit log of admin actions: who did what, to which tenant or cluster,
 * when, and what changed. Names are copied into each entry, so an entry still
 * reads right after the tenant, cluster or admin it names is renamed or gone.
 */
export class AuditLog {
  constructor (private readonly orm: MikroORM) {}

  /** The central tables' names in SQL. */
  private get t (): CentralTables {
    return centralTables(this.orm)
  }

  async record (entry: AuditRecord): Promise<void> {
    await centralSql(this.orm)(
      `insert into ${this.t.admin_audit_log} (actor_id, actor_email, action, tenant_key, tenant_identifier, cluster_id, cluster_name, change)
       values (?, ?, ?, ?, ?, ?, ?, ?::jsonb)`,
      [entry.actor?.id ?? null, entry.actor?.email ?? SYSTEM, entry.action.slice(0, 64),
        entry.tenant?.key ?? null, entry.tenant?.identifier ?? null, entry.cluster?.id ?? null, entry.cluster?.name ?? null,
        JSON.stringify(entry.change ?? {})])
  }

  /** Records an action by the request's signed-in admin. */
  async recordFor (request: { admin: AuditActor | null }, action: string, details: Omit<AuditRecord, 'actor' | 'action'> = {}): Promise<void> {
    await this.record({ actor: request.admin === null ? null : { id: request.admin.id, email: request.admin.email }, action, ...details })
  }

  /** Entries matching every filter given, newest first, one page at a time. */
  async list (query: AuditQuery = {}): Promise<{ entries: AuditEntry[], total: number }> {
    const where: string[] = []
    const params: unknown[] = []
    if (query.actorEmail !== undefined && query.actorEmail !== '') { where.push('actor_email = ?'); params.push(query.actorEmail.toLowerCase()) }
    if (query.action !== undefined && query.action !== '') {
      if (query.action.endsWith('.')) { where.push("action like ? escape '\\'"); params.push(query.action.replace(/[\\%_]/g, (c) => '\\' + c) + '%') } else { where.push('action = ?'); params.push(query.action) }
    }
    if (query.tenantKey !== undefined && query.tenantKey !== '') { where.push('tenant_key = ?'); params.push(query.tenantKey) }
    if (query.clusterId !== undefined && query.clusterId !== '') { where.push('cluster_id = ?'); params.push(query.clusterId) }
    if (query.withClusters === false) where.push("action not like 'cluster.%' and cluster_id is null")
    const clause = where.length === 0 ? '' : `where ${where.join(' and ')}`
    const pageSize = Math.min(200, Math.max(1, query.pageSize ?? 50))
    const page = Math.max(1, query.page ?? 1)
    const conn = this.orm.em.getConnection()
    // The count apart from the page: a window count would make a page far back read every entry's columns.
    const total = Number((await conn.execute(`select count(*)::int as n from ${this.t.admin_audit_log} ${clause}`, params as any[], 'all'))[0]?.n ?? 0)
    const rows = total === 0
      ? []
      : await conn.execute(`select l.* from (select id from ${this.t.admin_audit_log} ${clause} order by at desc, id desc limit ${pageSize} offset ${(page - 1) * pageSize}) p
          join ${this.t.admin_audit_log} l on l.id = p.id order by l.at desc, l.id desc`, params as any[], 'all')
    const entries = rows.map(toEntry)
    if (query.withClusters === false) {
      for (const e of entries) e.change = Object.fromEntries(Object.entries(e.change).filter(([field]) => !isClusterField(field)))
    }
    return { entries, total }
  }

  /** The distinct actions recorded so far, for a filter's choices (none about clusters when `withClusters` is false). */
  async actions (withClusters = true): Promise<string[]> {
    const rows = await centralSql(this.orm)(`select distinct action from ${this.t.admin_audit_log}${withClusters ? '' : " where action not like 'cluster.%' and cluster_id is null"} order by action`, [])
    return rows.map((r) => String(r.action))
  }
}
