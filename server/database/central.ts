import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import { centralEntities } from '../entities/central/index.js'
import { centralMigrations } from '../../migrations/central/index.js'

export interface CentralOrmOptions {
  url: string
  debug?: boolean
  poolSize?: number
}

/** The MikroORM instance of the central (landlord) database. */
export function createCentralOrm (options: CentralOrmOptions): MikroORM {
  return MikroORM.initSync({
    clientUrl: options.url,
    entities: centralEntities,
    contextName: 'fastify-tenancy:central',
    pool: { min: 0, max: options.poolSize ?? 10 },
    debug: options.debug ?? false,
    allowGlobalContext: false,
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: {
      tableName: 'fastify_tenancy_migrations',
      migrationsList: centralMigrations,
      transactional: true,
      allOrNothing: true,
      disableForeignKeys: false,
      snapshot: false, silent: true
    }
  })
}

/** Brings the central database to the newest central migration; returns the names it ran. */
export async function migrateCentral (orm: MikroORM): Promise<string[]> {
  const ran = await orm.migrator.up()
  return ran.map((m) => m.name)
}
