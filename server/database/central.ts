import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import type { EntitySchema } from '@mikro-orm/core'
import { centralEntities } from '../entities/central/index.js'
import { centralMigrations } from '../../migrations/central/index.js'
import { LockSpace, withAdvisoryLock } from './advisory-locks.js'
import { InvalidOptionError } from '../errors.js'

const CENTRAL_CONTEXT = 'fastify-tenancy:central'

export interface CentralOrmOptions {
  url: string
  debug?: boolean
  poolSize?: number
  /** The app's own central entities (a synced resource's central entity), next to the shipped ones. */
  entities?: EntitySchema<any, any>[]
}

/** The MikroORM instance of the central (landlord) database. */
export function createCentralOrm (options: CentralOrmOptions): MikroORM {
  return MikroORM.initSync({
    clientUrl: options.url,
    entities: [...centralEntities, ...(options.entities ?? [])],
    contextName: CENTRAL_CONTEXT,
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

/**
 * The central MikroORM instance: the app's own when it passed `orm` (it must
 * know our central entities; we never close it), otherwise one made here.
 */
export function centralOrmFor (options: { orm?: MikroORM | null, database: { url: string, debug: boolean }, centralEntities?: EntitySchema<any, any>[] }): { orm: MikroORM, owned: boolean } {
  const given = options.orm ?? null
  if (given === null) return { orm: createCentralOrm({ url: options.database.url, debug: options.database.debug, entities: options.centralEntities }), owned: true }
  const metadata = given.getMetadata()
  const missing = centralEntities.filter((e) => !metadata.has(e.meta.className)).map((e) => e.meta.className)
  if (missing.length > 0) throw new InvalidOptionError('orm', `must know the central entities (missing ${missing.join(', ')}): add \`centralEntities\` from fastify-tenancy to its \`entities\``)
  return { orm: given, owned: false }
}

/**
 * Brings the central database to the newest central migration; returns the
 * names it ran. An app's own MikroORM has its own migrations, so ours run
 * through a short-lived instance of our own on the same database. Under an
 * advisory lock on the central database.
 */
export async function migrateCentral (orm: MikroORM, url?: string): Promise<string[]> {
  const centralUrl = url ?? orm.config.getClientUrl()
  // Instances starting together migrate one after the other (the later ones find nothing left to run) instead of colliding.
  return await withAdvisoryLock(centralUrl, [LockSpace.centralMigrations, 0], async () => {
    if (orm.config.get('contextName') === CENTRAL_CONTEXT) return (await orm.migrator.up()).map((m) => m.name)
    const own = createCentralOrm({ url: centralUrl, poolSize: 1 })
    try {
      return (await own.migrator.up()).map((m) => m.name)
    } finally {
      await own.close(true)
    }
  })
}
