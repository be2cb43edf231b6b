import type { MikroORM } from '@mikro-orm/postgresql'
import type { Run } from '../database/central-transaction.js'
import { UUID_PATTERN, type Tenant } from '../tenant.js'
import { TenantNotFoundError } from '../errors.js'
import { TenantEntity } from '../entities/central/tenant.entity.js'

/** A tenant as the central database has it now (no cache, no identity map); FST_TENANCY_TENANT_NOT_FOUND when it is gone. */
export async function freshTenant (orm: MikroORM, key: string): Promise<Tenant> {
  const em = orm.em.fork({ clear: true, useContext: false })
  const tenant = await em.findOne(TenantEntity, { key }) as Tenant | null
  if (tenant === null) throw new TenantNotFoundError(key)
  return tenant
}

/**
 * Locks a tenant's row for the rest of the transaction, so that changes to
 * one tenant (its domains, its status) take turns, across instances too.
 */
export async function lockTenant (run: Run, key: string): Promise<{ identifier: string, status: string }> {
  const rows = await run(`select identifier, status from ${run.tables.tenants} where key = ? for update`, [key])
  const row = rows[0]
  if (row === undefined) throw new TenantNotFoundError(key)
  return { identifier: String(row.identifier), status: String(row.status) }
}

/**
 * Holds a tenant's row for the rest of the transaction without serializing
 * other holders (FOR SHARE): it is not deleted, nor marked deleting, until
 * the transaction ends. FST_TENANCY_TENANT_NOT_FOUND when there is no such
 * tenant; its status otherwise.
 */
export async function shareTenant (run: Run, key: string): Promise<{ identifier: string, status: string }> {
  if (!UUID_PATTERN.test(key)) throw new TenantNotFoundError(key)
  const rows = await run(`select identifier, status from ${run.tables.tenants} where key = ? for share`, [key])
  const row = rows[0]
  if (row === undefined) throw new TenantNotFoundError(key)
  return { identifier: String(row.identifier), status: String(row.status) }
}
