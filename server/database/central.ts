import { MikroORM } from '@mikro-orm/postgresql'
import { Migrator } from '@mikro-orm/migrations'
import type { EntitySchema } from '@mikro-orm/core'
import { centralEntitiesIn } from '../entities/central/index.js'
import { centralMigrationsIn } from '../../migrations/central/index.js'
import { LockSpace, withAdvisoryLock } from './advisory-locks.js'
import { centralSchemaOf, DEFAULT_CENTRAL_SCHEMA } from './central-schema.js'
import { centralConnectionError, ensureCentralSchema } from './central-database.js'
import { InvalidOptionError } from '../errors.js'
import { quoteIdent } from './names.js'
import { withServer } from './tenant-database.js'

const CENTRAL_CONTEXT = 'fastify-tenancy:central'
/** The central migrations' own table, in the central schema. */
const MIGRATIONS_TABLE = 'fastify_tenancy_migrations'

export interface CentralOrmOptions {
  url: string
  /** The schema of the central tables (default `tenancy`). */
  schema?: string
  debug?: boolean
  poolSize?: number
  /** The app's own central entities (a synced resource's central entity), next to the shipped ones. */
  entities?: EntitySchema<any, any>[]
}

/** The MikroORM instance of the central (landlord) database; its central entities map to the central schema. */
export function createCentralOrm (options: CentralOrmOptions): MikroORM {
  const schema = options.schema ?? DEFAULT_CENTRAL_SCHEMA
  return MikroORM.initSync({
    clientUrl: options.url,
    // The app's own entities keep the schema they name (its search path when none): only ours are in the central schema.
    entities: [...centralEntitiesIn(schema), ...(options.entities ?? [])],
    contextName: CENTRAL_CONTEXT,
    pool: { min: 0, max: options.poolSize ?? 10 },
    debug: options.debug ?? false,
    allowGlobalContext: false,
    ensureDatabase: false,
    extensions: [Migrator],
    migrations: {
      tableName: `${schema}.${MIGRATIONS_TABLE}`,
      migrationsList: centralMigrationsIn(schema),
      transactional: true,
      allOrNothing: true,
      disableForeignKeys: false,
      snapshot: false,
      silent: true
    }
  })
}

/**
 * The central MikroORM instance: the app's own when it passed `orm` (it must
 * know our central entities in the central schema; we never close it),
 * otherwise one made here.
 */
export function centralOrmFor (
  options: { orm?: MikroORM | null, database: { url: string, debug: boolean, schema: string }, centralEntities?: EntitySchema<any, any>[] }
): { orm: MikroORM, owned: boolean } {
  const schema = options.database.schema
  const given = options.orm ?? null
  if (given === null) {
    return { orm: createCentralOrm({ url: options.database.url, schema, debug: options.database.debug, entities: options.centralEntities }), owned: true }
  }
  const metadata = given.getMetadata()
  const missing = centralEntitiesIn(schema).filter((e) => !metadata.has(e.meta.className)).map((e) => e.meta.className)
  if (missing.length > 0) throw new InvalidOptionError('orm', `must know the central entities (missing ${missing.join(', ')}): add \`centralEntities\` from fastify-tenancy to its \`entities\``)
  const mapped = centralSchemaOf(given)
  if (mapped !== schema) throw new InvalidOptionError('orm', `maps the central entities to schema "${mapped}", but database.schema is "${schema}": give it \`centralEntitiesIn('${schema}')\` from fastify-tenancy instead of \`centralEntities\``)
  return { orm: given, owned: false }
}

/**
 * Brings the central database to the newest central migration; returns the
 * names it ran. An app's own MikroORM has its own migrations, so ours run
 * through a short-lived instance of our own on the same database. Under an
 * advisory lock on the central database.
 *
 * An installation made before the central schema existed keeps its
 * migrations table in `public`: it is moved into the central schema first, so
 * the migrator sees what ran and the next migration moves the rest.
 */
export async function migrateCentral (orm: MikroORM, url?: string): Promise<string[]> {
  const centralUrl = url ?? orm.config.getClientUrl()
  const schema = centralSchemaOf(orm)
  try {
    // Instances starting together migrate one after the other (the later ones find nothing left to run) instead of colliding.
    return await withAdvisoryLock(centralUrl, [LockSpace.centralMigrations, 0], async () => {
      // Committed before the migrator looks (on a connection of its own: the lock's stays in its transaction).
      await withServer(centralUrl, async (client) => {
        await ensureCentralSchema(client, centralUrl, schema)
        await client.query(`
          do $$ begin
            if to_regclass('public.${MIGRATIONS_TABLE}') is not null and to_regclass('${quoteIdent(schema)}.${MIGRATIONS_TABLE}') is null then
              alter table public.${MIGRATIONS_TABLE} set schema ${quoteIdent(schema)};
            end if;
          end $$`)
      })
      if (orm.config.get('contextName') === CENTRAL_CONTEXT) return (await orm.migrator.up()).map((m) => m.name)
      const own = createCentralOrm({ url: centralUrl, schema, poolSize: 1 })
      try {
        return (await own.migrator.up()).map((m) => m.name)
      } finally {
        await own.close(true)
      }
    })
  } catch (error) {
    throw centralConnectionError(error, centralUrl) ?? error
  }
}
