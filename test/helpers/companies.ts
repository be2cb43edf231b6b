import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { sql, urlFor } from './database.js'
import { sharedTables, tenantView } from './shared.js'
import { CentralUserEntity, SYNC_EVENT_NAMES, SHARED_MAPPING, type SyncOptions, type Tenant, type TenancyOptions } from '../../server/index.js'
import { TenantUserCopyEntity } from './tenant-schema.js'
import { CENTRAL_COMPANIES_SQL, COMPANY_PIVOT, TENANT_COMPANIES_SQL, CentralCompanyEntity, companiesResource, demoCentralEntities } from '../../server/demo/companies.js'
import { demoTenantEntities } from '../../server/demo/tenant-schema.js'

/** The shipped users resource, declared next to companies. */
export const USERS = { name: 'users', central: CentralUserEntity, tenant: TenantUserCopyEntity, attributes: ['name', 'email', 'password'] }

export const MODES = ['inline', 'queued'] as const
export type Mode = typeof MODES[number]

/** The companies resource mapped by its own pivot, or by the shipped shared mapping table. */
export const MAPPINGS = { 'own pivot': COMPANY_PIVOT, 'shared mapping': SHARED_MAPPING } as const
export type MappingName = keyof typeof MAPPINGS

/** Fast retries, so a test waits for a condition, not for a long backoff. */
export const QUICK = { retry: { minDelayMs: 100, maxDelayMs: 1000 }, pollIntervalMs: 100 }

export interface CompanyWorld {
  app: FastifyInstance
  central: string
  /** a and b get the company; c never does. */
  a: Tenant
  b: Tenant
  c: Tenant
  db: (t: Tenant) => string
  /** Sync events seen, as `name tenant` (tenant as a, b, c or central). */
  events: string[]
  settle: () => Promise<void>
  mappingRows: () => Promise<Array<{ tenant: string, global_id: string }>>
}

/** Makes the companies tables in the central database and in each tenant's. */
export async function companyTables (centralUrl: string, tenantUrls: string[]): Promise<void> {
  for (const statement of CENTRAL_COMPANIES_SQL) await sql(centralUrl, statement)
  for (const url of tenantUrls) for (const statement of TENANT_COMPANIES_SQL) await sql(url, statement)
}

export async function companyWorld (
  t: TestContext, mode: Mode, mapping: MappingName, extra: Partial<SyncOptions> & { options?: Partial<TenancyOptions> } = {}
): Promise<CompanyWorld> {
  const { options, ...syncExtra } = extra
  const { app, central } = await buildApp(t, {
    identification: ['header'],
    centralEntities: demoCentralEntities,
    tenantEntities: demoTenantEntities,
    ...options,
    sync: { mode, ...QUICK, resources: [USERS, companiesResource(MAPPINGS[mapping])], ...syncExtra }
  })
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async (identifier) => await app.tenancy.create({ identifier }))) as [Tenant, Tenant, Tenant]
  // Strategy shared: a tenant's "database" is its rows of the shared tables, seen through a tenant view.
  const views = new Map<string, string>()
  if (options?.strategy === 'shared') {
    for (const tenant of [a, b, c]) views.set(tenant.key, await tenantView(central, tenant.key))
    for (const statement of CENTRAL_COMPANIES_SQL) await sql(central.url, statement)
    await sharedTables(central, TENANT_COMPANIES_SQL)
  }
  const db = (tenant: Tenant): string => views.get(tenant.key) ?? urlFor(app.tenancy.tenants.databaseName(tenant))
  if (options?.strategy !== 'shared') await companyTables(central.url, [db(a), db(b), db(c)])
  const names = new Map([[a.key, 'a'], [b.key, 'b'], [c.key, 'c']])
  const events: string[] = []
  for (const name of SYNC_EVENT_NAMES) {
    app.tenancy.events.on(name, (e) => { events.push(`${e.name} ${e.tenant === null ? 'central' : names.get(e.tenant) ?? e.tenant}`) })
  }
  const m = MAPPINGS[mapping]
  return {
    app,
    central: central.url,
    a,
    b,
    c,
    db,
    events,
    settle: async () => { await app.tenancy.sync!.settle() },
    mappingRows: async () => (await sql<{ tenant: string, global_id: string }>(central.url,
      `select ${m.tenantColumn}::text as tenant, ${m.globalIdColumn} as global_id from ${m === SHARED_MAPPING ? `tenancy.${m.table}` : m.table} order by 1, 2`)).map((r) => ({ tenant: names.get(r.tenant) ?? r.tenant, global_id: r.global_id }))
  }
}

/** Creates a company centrally through the ORM; returns its global id. */
export async function centralCompany (app: FastifyInstance, values: { name: string, plan?: string }): Promise<string> {
  const em = app.tenancy.orm.em.fork()
  const company = em.create(CentralCompanyEntity, values as never)
  await em.flush()
  return String(company.globalId)
}

/** Changes a central company through the ORM. */
export async function changeCentral (app: FastifyInstance, globalId: string, changes: Record<string, unknown>): Promise<void> {
  const em = app.tenancy.orm.em.fork()
  const company = await em.findOneOrFail(CentralCompanyEntity, { globalId })
  Object.assign(company, changes)
  await em.flush()
}

export async function companies (url: string): Promise<Array<Record<string, unknown>>> {
  return await sql(url, 'select global_id, name, plan, notes, deleted_at is not null as deleted from companies order by global_id')
}
