import slugify from 'slugify'
import { v7 as uuidv7 } from 'uuid'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Tenant } from '../tenant.js'
import type { TenancyEvents } from '../events/tenancy-events.js'
import { ClusterNameTakenError, ClusterNotFoundError, ClusterRuleError, InvalidTenantChangeError, TenantNotFoundError } from '../errors.js'
import { UUID_PATTERN } from '../tenant.js'
import { checkParent, lockClusters, moveTenant } from './rules.js'
import { asClusterRuleError, centralRun, isConflict, retryingConflicts, type Run } from '../database/central-transaction.js'
import { centralTables, type CentralTables } from '../database/central-schema.js'
import { centralSql } from '../database/central-sql.js'
import { isUniqueViolation } from '../database/pg-errors.js'

export interface ClusterInput {
  name: string
  description?: string | null
}

export interface ClusterRow {
  id: string
  name: string
  slug: string
  description: string | null
  parentTenantId: string | null
  createdAt: Date
  updatedAt: Date
}

function toRow (r: Record<string, any>): ClusterRow {
  return {
    id: r.id,
    name: r.name,
    slug: r.slug,
    description: r.description,
    parentTenantId: r.parent_tenant_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at
  }
}

/**
 * Tenant clusters (`app.tenancy.clusters`): groups of tenants with one
 * Parent Tenant. Every change runs in a transaction that locks the clusters
 * it touches and keeps the rule; the database checks the same rule at commit.
 */
export interface ClusterParts {
  orm: MikroORM
  events: Pick<TenancyEvents, 'on'>
  /** A tenant by identifier or key, from the central database. */
  find: (key: string) => Promise<Tenant | null>
  invalidate: () => void
}

export class TenantClusters {
  private readonly parts: ClusterParts

  constructor (parts: ClusterParts) {
    this.parts = parts
    // Deleting a Parent Tenant while others remain is refused before anything is dropped.
    parts.events.on('tenant.deleting', async ({ tenant }) => {
      await this.transaction(async (run) => {
        const rows = await run(`select tenant_cluster_id from ${this.tables.tenants} where key = ?`, [tenant.key])
        const clusterId = rows[0]?.tenant_cluster_id as string | null | undefined
        if (clusterId == null) return
        const cluster = (await lockClusters(run, [clusterId])).get(clusterId)
        if (cluster?.parentTenantId !== tenant.key) return
        const others = await run(`select count(*)::int as n from ${this.tables.tenants} where tenant_cluster_id = ? and key <> ?`, [clusterId, tenant.key])
        if (Number(others[0]?.n) > 0) {
          throw new ClusterRuleError(`"${tenant.identifier}" is the Parent Tenant of "${cluster.name}" and other tenants remain: make another tenant the Parent Tenant before deleting it.`)
        }
      })
    })
  }

  async list (): Promise<Array<ClusterRow & { tenants: number, parentIdentifier: string | null }>> {
    const rows = await this.run(`
      select c.*, p.identifier as parent_identifier, (select count(*) from ${this.tables.tenants} t where t.tenant_cluster_id = c.id)::int as tenants
        from ${this.tables.tenant_clusters} c left join ${this.tables.tenants} p on p.key = c.parent_tenant_id order by c.name`)
    return rows.map((r) => ({ ...toRow(r), tenants: Number(r.tenants), parentIdentifier: r.parent_identifier }))
  }

  async find (id: string): Promise<ClusterRow | null> {
    if (!UUID_PATTERN.test(id)) return null
    const rows = await this.run(`select * from ${this.tables.tenant_clusters} where id = ?`, [id])
    return rows[0] === undefined ? null : toRow(rows[0])
  }

  /** The tenants of a cluster (the seed's `ofTenantCluster`), by identifier. */
  async tenantsOf (id: string): Promise<Tenant[]> {
    checkedId(id)
    const rows = await this.run(`select key from ${this.tables.tenants} where tenant_cluster_id = ? order by identifier`, [id])
    const tenants = await Promise.all(rows.map(async (r) => await this.parts.find(String(r.key))))
    return tenants.filter((t): t is Tenant => t !== null)
  }

  /** True when the tenant is the Parent Tenant of its cluster. */
  async isClusterManager (tenant: Pick<Tenant, 'key'>): Promise<boolean> {
    const rows = await this.run(`select 1 from ${this.tables.tenants} t join ${this.tables.tenant_clusters} c on c.id = t.tenant_cluster_id and c.parent_tenant_id = t.key where t.key = ?`, [tenant.key])
    return rows.length === 1
  }

  /** Creates a cluster; a name in use (case aside) is refused with FST_TENANCY_CLUSTER_NAME_TAKEN, also between simultaneous creates. */
  async create (input: ClusterInput): Promise<ClusterRow> {
    input = checkedInput(input)
    const id = uuidv7()
    await this.transaction(async (run) => {
      await this.nameFree(run, input.name, null)
      const slug = await this.uniqueSlug(run, input.name, null)
      await run(`insert into ${this.tables.tenant_clusters} (id, name, slug, description) values (?, ?, ?, ?)`, [id, input.name, slug, input.description ?? null])
    }, input.name)
    return await this.mustFind(id)
  }

  async update (id: string, input: ClusterInput): Promise<ClusterRow> {
    checkedId(id)
    input = checkedInput(input)
    await this.transaction(async (run) => {
      const cluster = (await lockClusters(run, [id])).get(id)
      await this.nameFree(run, input.name, id)
      const slug = cluster?.name === input.name ? null : await this.uniqueSlug(run, input.name, id)
      await run(`update ${this.tables.tenant_clusters} set name = ?, description = ?, ${slug === null ? '' : 'slug = ?, '}updated_at = now() where id = ?`,
        slug === null ? [input.name, input.description ?? null, id] : [input.name, input.description ?? null, slug, id])
    }, input.name)
    return await this.mustFind(id)
  }

  /** Deletes a cluster; its tenants are released (they belong to no cluster afterwards). */
  async delete (id: string): Promise<void> {
    checkedId(id)
    await this.transaction(async (run) => {
      await lockClusters(run, [id])
      await run(`update ${this.tables.tenant_clusters} set parent_tenant_id = null where id = ?`, [id])
      await run(`update ${this.tables.tenants} set tenant_cluster_id = null, updated_at = now() where tenant_cluster_id = ?`, [id])
      await run(`delete from ${this.tables.tenant_clusters} where id = ?`, [id])
    })
    this.parts.invalidate()
  }

  /** Adds tenants to a cluster (moving them from another one by the same rules); the first becomes the Parent Tenant. */
  async attach (id: string, tenantKeys: string[]): Promise<void> {
    checkedId(id)
    if (!Array.isArray(tenantKeys)) throw new InvalidTenantChangeError('attach takes a list of tenant keys or identifiers')
    for (const key of tenantKeys) await this.move(key, id)
  }

  /** Takes a tenant out of a cluster; refused for the Parent Tenant while others remain. */
  async detach (id: string, tenantKey: string): Promise<void> {
    checkedId(id)
    tenantKey = await this.keyOf(tenantKey)
    await this.transaction(async (run) => {
      const rows = await run(`select tenant_cluster_id from ${this.tables.tenants} where key = ?`, [tenantKey])
      if (rows[0] === undefined) throw new TenantNotFoundError(tenantKey)
      if (rows[0].tenant_cluster_id !== id) throw new ClusterRuleError('That tenant is not in this cluster.')
      await this.moveIn(run, tenantKey, null)
    })
  }

  /** Puts a tenant in a cluster, or in none (null), keeping the rule on both sides. */
  async move (tenantKey: string, clusterId: string | null): Promise<void> {
    if (clusterId !== null) checkedId(clusterId)
    tenantKey = await this.keyOf(tenantKey)
    await this.transaction(async (run) => { await this.moveIn(run, tenantKey, clusterId) })
  }

  /** Makes a tenant of the cluster its Parent Tenant. */
  async setParent (id: string, tenantKey: string): Promise<void> {
    checkedId(id)
    tenantKey = await this.keyOf(tenantKey)
    await this.transaction(async (run) => {
      const cluster = (await lockClusters(run, [id])).get(id)
      if (cluster === undefined) throw new ClusterNotFoundError(id)
      await checkParent(run, cluster, tenantKey)
      await run(`update ${this.tables.tenant_clusters} set parent_tenant_id = ?, updated_at = now() where id = ?`, [tenantKey, id])
    })
  }

  /** The key of a tenant named by key or identifier; FST_TENANCY_TENANT_NOT_FOUND when none has it. */
  private async keyOf (name: string): Promise<string> {
    const tenant = typeof name === 'string' && name !== '' ? await this.parts.find(name) : null
    if (tenant === null) throw new TenantNotFoundError(String(name).slice(0, 100))
    return tenant.key
  }

  private async moveIn (run: Run, tenantKey: string, clusterId: string | null): Promise<void> {
    await moveTenant(run, tenantKey, clusterId)
  }

  private async nameFree (run: Run, name: string, exceptId: string | null): Promise<void> {
    const rows = await run(`select 1 from ${this.tables.tenant_clusters} where lower(name) = lower(?) and id is distinct from ?`, [name, exceptId])
    if (rows.length > 0) throw new ClusterNameTakenError(name)
  }

  private async uniqueSlug (run: Run, name: string, exceptId: string | null): Promise<string> {
    const base = (slugify(name, { lower: true, strict: true, trim: true }) || 'cluster').slice(0, 200)
    for (let n = 1; ; n++) {
      const slug = n === 1 ? base : `${base}-${n}`
      const rows = await run(`select 1 from ${this.tables.tenant_clusters} where slug = ? and id is distinct from ?`, [slug, exceptId])
      if (rows.length === 0) return slug
    }
  }

  private async mustFind (id: string): Promise<ClusterRow> {
    const row = await this.find(id)
    if (row === null) throw new ClusterNotFoundError(id)
    return row
  }

  private async run (sql: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
    return await centralSql(this.parts.orm)(sql, params)
  }

  /** The central tables' names in SQL. */
  private get tables (): CentralTables {
    return centralTables(this.parts.orm)
  }

  /** Runs `fn` in a transaction, again on a deadlock or a conflicting concurrent move; the database's refusal becomes a clear error. */
  private async transaction (fn: (run: Run) => Promise<void>, name?: string): Promise<void> {
    const conn = this.parts.orm.em.getConnection()
    const uniqueViolation = (error: unknown): string => isUniqueViolation(error) ? String((error as Error).message) : ''
    try {
      // A slug taken meanwhile is simply tried again, like a deadlock.
      await retryingConflicts(
        async () => { await conn.transactional(async (trx) => { await fn(centralRun(conn, this.tables, trx)) }) },
        (error) => isConflict(error) || uniqueViolation(error).includes('slug'))
    } catch (error) {
      // Two simultaneous creates: the unique name index decides.
      if (uniqueViolation(error).includes('tenant_clusters_name_unique')) throw new ClusterNameTakenError(name ?? 'this name')
      throw asClusterRuleError(error)
    }
  }
}

/** A cluster id is a UUID; anything else is FST_TENANCY_INVALID_CHANGE (never SQL's own error). */
function checkedId (id: unknown): void {
  if (typeof id !== 'string' || !UUID_PATTERN.test(id)) throw new InvalidTenantChangeError(`${JSON.stringify(String(id).slice(0, 40))} is not a cluster id (a UUID)`)
}

/** A cluster's name is 1 to 255 characters (spaces around it trimmed), its description at most 2,000 (the admin's limits). */
function checkedInput (input: ClusterInput): ClusterInput {
  if (typeof input !== 'object' || input === null) throw new InvalidTenantChangeError('give a cluster as { name, description }')
  const name = typeof input.name === 'string' ? input.name.trim() : ''
  if (name.length === 0 || name.length > 255) throw new InvalidTenantChangeError('a cluster name is 1 to 255 characters')
  const description = input.description ?? null
  if (description !== null && (typeof description !== 'string' || description.length > 2000)) throw new InvalidTenantChangeError('a cluster description is text of at most 2,000 characters')
  return { name, description }
}
