import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { Migration20261125020002CompaniesCentral } from './central/Migration20261125020002_companies_central.js'

/** The demo app's own central tables (synced companies), tracked in a table of its own, apart from the library's. */
export const demoCentralMigrations = [{ name: 'Migration20261125020002_companies_central', class: Migration20261125020002CompaniesCentral }]

/** Runs the demo's central migrations on the central database at `url`; returns the names it ran. */
export async function runDemoCentralMigrations (url: string): Promise<string[]> {
  const orm = MikroORM.initSync({
    clientUrl: url,
    entities: [],
    discovery: { warnWhenNoEntities: false },
    contextName: 'fastify-tenancy-demo:migrate:central',
    pool: { min: 0, max: 1 },
    allowGlobalContext: true,
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: { tableName: 'demo_migrations', migrationsList: demoCentralMigrations, transactional: true, snapshot: false, silent: true }
  })
  try {
    return (await orm.migrator.up()).map((m) => m.name)
  } finally {
    await orm.close(true)
  }
}
