import { v7 as uuidv7 } from 'uuid'
import type { FastifyBaseLogger } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Tenant, TenantStatus } from '../tenant.js'
import { UUID_PATTERN } from '../tenant.js'
import { ClusterRuleError, DomainTakenError, IdentifierTakenError, ProvisioningFailedError, TenantDeletingError, TenantNotFoundError } from '../errors.js'
import { misuse } from '../misuse.js'
import type { HeldLock, TenantLocker } from '../database/advisory-locks.js'
import { retryingConflicts } from '../database/central-transaction.js'
import { centralTables, type CentralTables } from '../database/central-schema.js'
import type { TenantChange } from '../providers/invalidation.js'
import { checkTenantInput, type CreateTenantInput } from './tenant-input.js'
import { refuseIdentifierOfDomain, refuseSubdomainDomains } from './subdomain-clash.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'
import { activateStep, createDatabaseStep, migrateStep, seedStep, type ProvisioningContext, type ProvisioningStep } from './steps.js'
import { fewestTenants } from './placement.js'
import type { TenancyEvents } from '../events/tenancy-events.js'
import type { DatabaseStrategy } from '../database/strategy.js'
import type { TenantConnections } from '../database/tenant-connections.js'
import type { TenantMigrator } from '../database/tenant-migrator.js'
import type { TargetOf } from '../database/tenant-targets.js'
import type { RunAsTenant } from '../context/tenant-scopes.js'
import type { TenantScope } from '../context/tenant-scope.js'
import type { HostLoad } from './placement.js'
import { centralSql } from '../database/central-sql.js'
import { isUniqueViolation } from '../database/pg-errors.js'

/** What the lifecycle needs: the central database, where tenants live, and how to run as one. */
export interface LifecycleParts {
  orm: MikroORM
  events: TenancyEvents
  strategy: DatabaseStrategy
  connections: Pick<TenantConnections, 'evict'>
  targetOf: TargetOf
  runAsTenant: RunAsTenant
  invalidate: () => void
  /** Forgets the cached entries one change touched. */
  forget: (change: TenantChange) => void
  /** The tenant migrations (provisioning runs them when the database is not cloned from the template). */
  migrator: Pick<TenantMigrator, 'up'>
  /** Runs a function holding a tenant's advisory lock (see database/advisory-locks.ts). */
  lock: TenantLocker
  log: FastifyBaseLogger
  settings: {
    centralDomains: readonly string[]
    hosts: Record<string, string>
    defaultHost: string
    seeder: ((scope: TenantScope) => Promise<void>) | null
    /** The plugin's clock: a former name the new tenant would take is judged by it. */
    now?: () => number
    steps: ((defaults: ProvisioningStep[]) => ProvisioningStep[]) | null
    placement: ((hosts: HostLoad[]) => string | Promise<string>) | null
  }
}

/** Creates, provisions, finds and deletes tenants; `app.tenancy.create()` and friends call it. */
export class TenantLifecycle {
  private readonly parts: LifecycleParts
  private readonly orm: MikroORM
  private readonly events: TenancyEvents
  readonly steps: ProvisioningStep[]

  constructor (parts: LifecycleParts) {
    this.parts = parts
    this.orm = parts.orm
    this.events = parts.events
    const p = parts.settings
    const defaults = [createDatabaseStep, migrateStep, seedStep(p.seeder), activateStep]
    this.steps = p.steps === null ? defaults : p.steps(defaults)
  }

  /**
   * Creates a tenant: checks the input before any SQL, records the tenant as
   * `provisioning`, runs the provisioning steps, and resolves with the active
   * tenant. A failed step is undone and the tenant is left `failed` with the
   * reason; `provision()` retries it.
   */
  async create (input: CreateTenantInput & { key?: string, adopt?: boolean, restoring?: boolean }): Promise<Tenant> {
    const opts = this.parts.settings
    const checked = checkTenantInput(input, opts.centralDomains)
    if (input.key !== undefined && !UUID_PATTERN.test(input.key)) throw misuse.badTenantKey(input.key)
    const host = checked.databaseHost ?? await this.place()
    if (opts.hosts[host] === undefined) throw misuse.unknownDatabaseHost(host)
    const draft = {
      key: input.key ?? uuidv7(),
      identifier: checked.identifier,
      resourceKey: uuidv7(),
      name: checked.name,
      status: 'provisioning' as TenantStatus,
      databaseHost: host,
      data: checked.data
    }
    await refuseSubdomainDomains(this.orm, checked.domains, opts.centralDomains, { key: null, identifier: checked.identifier })
    await refuseIdentifierOfDomain(this.orm, checked.identifier, opts.centralDomains, null)
    await this.events.emit({ name: 'tenant.creating', tenant: draft })
    // The lock is taken before the row exists and held until provisioning ends,
    // so no other call (here or on another instance) sees this tenant
    // `provisioning` while it can still act on it: provision() and delete() wait.
    const tenant = await this.locked(draft.key, async () => {
      const inserted = await this.insert(draft, checked.domains)
      return await this.provisionTenant(inserted, input.adopt ?? false, input.restoring ?? false)
    })
    await this.events.emit({ name: 'tenant.created', tenant })
    return tenant
  }

  /** The central tables' names in SQL. */
  private get tables (): CentralTables {
    return centralTables(this.orm)
  }

  /** Runs `fn` holding the tenant's advisory lock: lifecycle operations on one tenant never interleave, across instances too. */
  async locked<T> (key: string, fn: (held: HeldLock) => Promise<T>): Promise<T> {
    return await this.parts.lock(key, fn)
  }

  /** Records the tenant `provisioning` with its domains (the first is primary) and returns it as the central database has it. */
  private async insert (
    draft: { key: string, identifier: string, resourceKey: string, name: string, data: Record<string, unknown>, databaseHost: string },
    domains: string[]
  ): Promise<Tenant> {
    const host = draft.databaseHost
    const checked = { identifier: draft.identifier, domains }
    const conn = this.orm.em.getConnection()
    let rows: Array<Record<string, unknown>>
    try {
      // One statement: atomic without a transaction of its own, and one round
      // trip (creating a tenant in strategy shared is little more than this).
      // Its name-lock triggers take their locks row by row, so two creates
      // may deadlock on lock buckets; the loser is rolled back and runs again.
      rows = await retryingConflicts(async () => await conn.execute(
        // Both inserts read the clock row first, so the name triggers judge former names by the plugin's clock.
        `with clock as (
           select set_config('fastify_tenancy.now', ?, true)
         ), t as (
           insert into ${this.tables.tenants} (key, identifier, resource_key, name, status, data, database_host)
           select ?::uuid, ?, ?::uuid, ?, 'provisioning', ?::jsonb, ? from clock returning *
         ), d as (
           insert into ${this.tables.domains} (domain, tenant_key, is_primary)
           select u.domain, ?::uuid, u.n = 1 from clock, json_array_elements_text(?::json) with ordinality as u(domain, n)
           returning 1
         )
         select * from t`,
        [new Date((this.parts.settings.now ?? Date.now)()).toISOString(), draft.key, draft.identifier, draft.resourceKey, draft.name, JSON.stringify(draft.data), host, draft.key, JSON.stringify(checked.domains)], 'all'))
    } catch (error) {
      const e = error as { code?: string, constraint?: string, detail?: string }
      const where = String(e.constraint ?? '') + String(e.detail ?? '')
      if (isUniqueViolation(e) && where.includes('identifier')) throw new IdentifierTakenError(checked.identifier)
      if (isUniqueViolation(e) && where.includes('tenants_pkey')) throw misuse.tenantKeyTaken(draft.key)
      if (isUniqueViolation(e) && where.includes('domain')) {
        throw new DomainTakenError(checked.domains.find((d) => where.includes(d)) ?? checked.domains.join(', '))
      }
      throw error
    }
    // Cached misses for the new names go (other instances hear the row triggers).
    this.parts.forget({ keys: [draft.key], identifiers: [draft.identifier], resourceKeys: [draft.resourceKey], domains })
    return this.tenantOf(rows[0] as Record<string, unknown>)
  }

  /** A tenants row as the entity `find()` returns. */
  private tenantOf (row: Record<string, unknown>): Tenant {
    return this.orm.em.fork({ clear: true, useContext: false }).map(TenantEntity, row) as Tenant
  }

  /**
   * Runs the provisioning steps again for a tenant that is not provisioned
   * (after a failure, or a crash mid-create); an active or suspended tenant
   * is returned as it is. Under the tenant's lock, so a `provisioning` tenant
   * seen here is one whose creator is gone (its lock died with it): its
   * leftover database is this tenant's own half-made one, and is replaced.
   */
  async provision (tenant: Pick<Tenant, 'key'>): Promise<Tenant> {
    return await this.locked(tenant.key, async () => {
      const current = await this.mustFind(tenant.key)
      if (current.status === 'active' || current.status === 'suspended') return current
      if (current.status === 'deleting') throw new TenantDeletingError(current.identifier)
      const target = this.parts.targetOf(current)
      if (await this.parts.strategy.exists(target)) {
        await this.parts.connections.evict(target.id)
        await this.parts.strategy.drop(target)
      }
      return await this.provisionTenant(current, false)
    })
  }

  private async provisionTenant (tenant: Tenant, adopt: boolean, restoring = false): Promise<Tenant> {
    const target = this.parts.targetOf(tenant)
    let activated: Tenant | null = null
    const ctx: ProvisioningContext = {
      tenant,
      target,
      strategy: this.parts.strategy,
      events: this.events,
      adopt,
      restoring,
      created: false,
      fromTemplate: false,
      migrate: async () => await this.parts.migrator.up(target),
      runAsTenant: async (fn) => { await this.parts.runAsTenant(tenant, fn) },
      evictPool: async () => { await this.parts.connections.evict(target.id) },
      activate: async () => { activated = await this.setStatus(tenant.key, 'active', null) }
    }
    const done: ProvisioningStep[] = []
    for (const step of this.steps) {
      try {
        await step.run(ctx)
        done.push(step)
      } catch (error) {
        // Undo the failing step (it may have half run), then the earlier ones, last first.
        for (const s of [step, ...done.reverse()]) {
          try {
            await s.undo?.(ctx)
          } catch (undoError) {
            this.parts.log.error({ err: undoError, tenant: tenant.key }, `fastify-tenancy: undoing step ${s.name} failed`)
          }
        }
        const reason = (error as Error).message
        await this.setStatus(tenant.key, 'failed', `${step.name}: ${reason}`).catch(() => {})
        await this.events.emit({ name: 'tenant.failed', tenant, step: step.name, error: error as Error }).catch(() => {})
        throw new ProvisioningFailedError(tenant.identifier, step.name, reason)
      }
    }
    // With the default steps, activation is the last change: its row is the tenant now.
    if (this.parts.settings.steps === null && activated !== null) return activated
    return await this.mustFind(tenant.key)
  }

  /**
   * Deletes a tenant, under its lock, in an order where a failure at any
   * point leaves a state that calling delete again finishes: (1) in one
   * transaction, the tenant is marked `deleting` (no longer served) and the
   * cluster rule is checked (a Parent Tenant with other members is refused
   * before anything is dropped); (2) its pools are closed; (3) its database
   * (or schema) is dropped, ending open connections; (4) its pivot rows,
   * domains and central row are removed. Running it twice is harmless.
   */
  async delete (tenant: Pick<Tenant, 'key' | 'databaseHost'>): Promise<void> {
    await this.locked(tenant.key, async () => {
      const found = await this.find(tenant.key)
      const subject = found ?? (tenant as Tenant)
      await this.events.emit({ name: 'tenant.deleting', tenant: subject })
      if (found !== null) await this.markDeleting(found)
      const target = this.parts.targetOf(subject)
      await this.parts.connections.evict(target.id)
      await this.parts.strategy.drop(target)
      const conn = this.orm.em.getConnection()
      await conn.transactional(async (trx) => {
        await conn.execute(`delete from ${this.tables.domains} where tenant_key = ?`, [tenant.key], 'run', trx)
        await conn.execute(`delete from ${this.tables.tenants} where key = ?`, [tenant.key], 'run', trx)
      })
      this.parts.forget({ keys: [tenant.key], identifiers: [], resourceKeys: [], domains: [] })
      await this.events.emit({ name: 'tenant.deleted', tenant: subject })
    })
  }

  /** Step 1 of delete: mark the tenant `deleting` and check the cluster rule, in one transaction. */
  private async markDeleting (tenant: Tenant): Promise<void> {
    const conn = this.orm.em.getConnection()
    await conn.transactional(async (trx) => {
      const rows: Array<{ tenant_cluster_id: string | null }> = await conn.execute(`select tenant_cluster_id from ${this.tables.tenants} where key = ? for update`, [tenant.key], 'all', trx)
      const cluster = rows[0]?.tenant_cluster_id ?? null
      if (cluster !== null) {
        const [c]: Array<{ name: string, parent_tenant_id: string | null }> = await conn.execute(`select name, parent_tenant_id from ${this.tables.tenant_clusters} where id = ? for update`, [cluster], 'all', trx)
        if (c?.parent_tenant_id === tenant.key) {
          const [others]: Array<{ n: number }> = await conn.execute(`select count(*)::int as n from ${this.tables.tenants} where tenant_cluster_id = ? and key <> ?`, [cluster, tenant.key], 'all', trx)
          if (Number(others?.n ?? 0) > 0) {
            throw new ClusterRuleError(`"${tenant.identifier}" is the Parent Tenant of "${c.name}" and other tenants remain: make another tenant the Parent Tenant first, then delete it.`)
          }
        }
      }
      await conn.execute(`update ${this.tables.tenants} set status = 'deleting', updated_at = now() where key = ?`, [tenant.key], 'run', trx)
    })
    this.parts.forget({ keys: [tenant.key], identifiers: [], resourceKeys: [], domains: [] })
  }

  /** A tenant by identifier or key, straight from the central database (no cache). */
  async find (identifierOrKey: string): Promise<Tenant | null> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const where = UUID_PATTERN.test(identifierOrKey) ? { key: identifierOrKey } : { identifier: identifierOrKey }
    return await em.findOne(TenantEntity, where) as Tenant | null
  }

  /** Tenants by identifiers or keys (all when none given), minus the skipped ones; an unknown name throws FST_TENANCY_TENANT_NOT_FOUND. */
  async select (names?: readonly string[], skip: readonly string[] = []): Promise<Tenant[]> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const all = await em.find(TenantEntity, {}, { orderBy: { identifier: 'asc' } }) as Tenant[]
    const byName = (name: string): Tenant | undefined => all.find((t) => t.identifier === name || t.key === name)
    for (const name of [...(names ?? []), ...skip]) if (byName(name) === undefined) throw new TenantNotFoundError(name)
    const chosen = names === undefined || names.length === 0 ? all : names.map((n) => byName(n) as Tenant)
    const skipped = new Set(skip.map((n) => (byName(n) as Tenant).key))
    return [...new Map(chosen.filter((t) => !skipped.has(t.key)).map((t) => [t.key, t])).values()]
  }

  private async place (): Promise<string> {
    const hosts = Object.keys(this.parts.settings.hosts)
    if (hosts.length === 1) return hosts[0] as string
    const rows = await centralSql(this.orm)(`select database_host, count(*)::int as n from ${this.tables.tenants} group by database_host`, [])
    const loads = hosts.map((name) => ({ name, tenants: Number(rows.find((r) => (r.database_host ?? this.parts.settings.defaultHost) === name)?.n ?? 0) }))
    const placement = this.parts.settings.placement ?? fewestTenants
    return await placement(loads)
  }

  /** Sets a tenant's status and returns the tenant as it is now (null when its row is gone). */
  private async setStatus (key: string, status: TenantStatus, reason: string | null): Promise<Tenant | null> {
    const rows: Array<Record<string, unknown>> = await centralSql(this.orm)(`update ${this.tables.tenants} set status = ?, failure_reason = ?, updated_at = now() where key = ? returning *`, [status, reason, key])
    this.parts.forget({ keys: [key], identifiers: [], resourceKeys: [], domains: [] })
    return rows[0] === undefined ? null : this.tenantOf(rows[0])
  }

  private async mustFind (key: string): Promise<Tenant> {
    const tenant = await this.find(key)
    if (tenant === null) throw new TenantNotFoundError(key)
    return tenant
  }
}
