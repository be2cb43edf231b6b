import { Migration } from '@mikro-orm/migrations'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../server/index.js'
import { tenantMigrations } from './tenant-schema.js'
import { sql } from './database.js'

/** The second tenant migration of a rollout test: one table, which a planted failure has made already. */
export class Migration20261206000002Marker extends Migration {
  override async up (): Promise<void> {
    this.addSql('create table rollout_marker (id integer primary key)')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists rollout_marker')
  }
}

export const MARKER = 'Migration20261206000002_marker'

/** The test app's migrations plus the new one: what a deploy of a new version brings. */
export const withMarker = {
  migrationsList: [...tenantMigrations.migrationsList, { name: MARKER, class: Migration20261206000002Marker }]
}

/** How many times each tenant's migrations table records the new migration (0 or 1 unless something ran twice). */
export async function markerRuns (app: FastifyInstance, tenants: readonly Tenant[]): Promise<number[]> {
  return await Promise.all(tenants.map(async (t) => {
    const target = app.tenancy.tenants.target(t)
    // A tenant database's table, or (strategy schema) the tenant schema's.
    const table = target.schema === null ? 'fastify_tenancy_migrations' : `"${target.schema}".fastify_tenancy_migrations`
    const rows = await sql<{ n: number }>(target.url, `select count(*)::int as n from ${table} where name = $1`, [MARKER])
    return rows[0]?.n ?? 0
  }))
}

/** Plants a failure: the table the new migration makes is already there. */
export async function plantFailure (app: FastifyInstance, tenant: Tenant): Promise<void> {
  await sql(app.tenancy.tenants.target(tenant).url, 'create table rollout_marker (id integer primary key)')
}
