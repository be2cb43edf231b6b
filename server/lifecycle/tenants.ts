import { v7 as uuidv7 } from 'uuid'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { Tenancy } from '../tenancy.js'
import type { Tenant } from '../tenant.js'
import { DomainTakenError, IdentifierTakenError, MisconfigurationError, ProvisioningFailedError } from '../errors.js'
import { checkTenantInput, type CreateTenantInput } from './tenant-input.js'
import { createDatabase, databaseExists, dropDatabase, migrateTenantDatabase } from '../database/tenant-database.js'
import { ensureTemplate } from '../database/template.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'

/** Provisions, finds and deletes tenants; `app.tenancy.create()` and friends call it. */
export class TenantLifecycle {
  private readonly tenancy: Tenancy
  private readonly orm: MikroORM

  constructor (tenancy: Tenancy) {
    this.tenancy = tenancy
    this.orm = tenancy.orm
  }

  /** Creates a tenant: checks the input, records it as provisioning, makes its database, marks it active. */
  async create (input: CreateTenantInput): Promise<Tenant> {
    const opts = this.tenancy.options
    const checked = checkTenantInput(input, opts.centralDomains)
    const host = checked.databaseHost ?? opts.database.defaultHost
    if (opts.database.hosts[host] === undefined) throw new MisconfigurationError(`Database host "${host}" is not in the database.hosts option.`)
    const key = uuidv7()
    const conn = this.orm.em.getConnection()
    try {
      await conn.transactional(async (trx) => {
        await conn.execute(
          'insert into tenants (key, identifier, resource_key, name, status, data, database_host) values (?, ?, ?, ?, \'provisioning\', ?, ?)',
          [key, checked.identifier, uuidv7(), checked.name, JSON.stringify(checked.data), host], 'run', trx)
        for (const [i, domain] of checked.domains.entries()) {
          await conn.execute('insert into domains (domain, tenant_key, is_primary) values (?, ?, ?)', [domain, key, i === 0], 'run', trx)
        }
      })
    } catch (error) {
      const e = error as { code?: string, constraint?: string, detail?: string }
      if (e.code === '23505' && String(e.constraint ?? e.detail).includes('identifier')) throw new IdentifierTakenError(checked.identifier)
      if (e.code === '23505' && String(e.constraint ?? e.detail).includes('domain')) {
        const taken = checked.domains.find((d) => String(e.detail).includes(d)) ?? checked.domains.join(', ')
        throw new DomainTakenError(taken)
      }
      throw error
    }
    this.tenancy.invalidate()
    return await this.provision(await this.mustFind(key))
  }

  /** Makes (or remakes) the tenant's database and marks it active; on failure drops it and marks the tenant failed. */
  async provision (tenant: Tenant): Promise<Tenant> {
    const server = this.serverOf(tenant)
    const name = this.tenancy.databaseName(tenant)
    let step = 'create-database'
    try {
      if (await databaseExists(server, name)) await dropDatabase(server, name)
      let fromTemplate = true
      const template = this.tenancy.templateName()
      try {
        await ensureTemplate(server, template)
        await createDatabase(server, name, template)
      } catch {
        fromTemplate = false
        await createDatabase(server, name)
      }
      if (!fromTemplate) {
        step = 'migrate'
        await migrateTenantDatabase(server, name)
      }
      step = 'activate'
      await this.setStatus(tenant.key, 'active', null)
    } catch (error) {
      await dropDatabase(server, name).catch(() => {})
      const reason = (error as Error).message
      await this.setStatus(tenant.key, 'failed', `${step}: ${reason}`).catch(() => {})
      throw new ProvisioningFailedError(tenant.identifier, step, reason)
    }
    return await this.mustFind(tenant.key)
  }

  /** Deletes the tenant: its database (connections ended first), domains and pivot rows, then the row. Harmless twice. */
  async delete (tenant: Pick<Tenant, 'key' | 'databaseHost'>): Promise<void> {
    const url = this.tenancy.databaseUrl(tenant)
    await this.tenancy.connections.evict(url)
    await dropDatabase(this.serverOf(tenant), this.tenancy.databaseName(tenant))
    const conn = this.orm.em.getConnection()
    await conn.transactional(async (trx) => {
      await conn.execute('delete from tenant_users where tenant_key = ?', [tenant.key], 'run', trx)
      await conn.execute('delete from domains where tenant_key = ?', [tenant.key], 'run', trx)
      await conn.execute('update tenant_clusters set parent_tenant_id = null where parent_tenant_id = ?', [tenant.key], 'run', trx)
      await conn.execute('delete from tenants where key = ?', [tenant.key], 'run', trx)
    })
    this.tenancy.invalidate()
  }

  private serverOf (tenant: Pick<Tenant, 'databaseHost'>): string {
    const hostName = tenant.databaseHost ?? this.tenancy.options.database.defaultHost
    const server = this.tenancy.options.database.hosts[hostName]
    if (server === undefined) throw new MisconfigurationError(`Database host "${hostName}" is not in the database.hosts option.`)
    return server
  }

  private async setStatus (key: string, status: string, reason: string | null): Promise<void> {
    await this.orm.em.getConnection().execute('update tenants set status = ?, failure_reason = ?, updated_at = now() where key = ?', [status, reason, key], 'run')
    this.tenancy.invalidate()
  }

  private async mustFind (key: string): Promise<Tenant> {
    const em = this.orm.em.fork({ clear: true, useContext: false })
    const tenant = await em.findOne(TenantEntity, { key })
    if (tenant === null) throw new MisconfigurationError(`Tenant ${key} vanished while it was being provisioned.`)
    return tenant as unknown as Tenant
  }
}
