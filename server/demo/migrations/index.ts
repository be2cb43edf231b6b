import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { Migration20261125020002CompaniesCentral } from './Migration20261125020002_companies_central.js'
import { Migration20261125020003CompaniesTenant } from './Migration20261125020003_companies_tenant.js'

/** The demo app's own migrations, next to the library's, tracked in a table of their own. */
export const demoCentralMigrations = [{ name: 'Migration20261125020002_companies_central', class: Migration20261125020002CompaniesCentral }]
export const demoTenantMigrations = [{ name: 'Migration20261125020003_companies_tenant', class: Migration20261125020003CompaniesTenant }]

/** Runs the demo's migrations of one kind on the database at `url`; returns the names it ran. */
export async function runDemoMigrations (url: string, kind: 'central' | 'tenant'): Promise<string[]> {
  const orm = MikroORM.initSync({
    clientUrl: url,
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: `fastify-tenancy-demo:migrate:${kind}`,
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: { tableName: 'demo_migrations', migrationsList: kind === 'central' ? demoCentralMigrations : demoTenantMigrations, transactional: true, snapshot: false, silent: true }
  })
  try {
    return (await orm.migrator.up()).map((m) => m.name)
  } finally {
    await orm.close(true)
  }
}
