import Fastify, { type FastifyInstance } from 'fastify'
import type { TestContext } from 'node:test'
import { tenancyPlugin, type TenancyDatabaseOptions, type TenancyOptions } from '../../server/index.js'
import { freshCentral, type CentralDatabase } from './database.js'
import { prepareShared } from './shared.js'
import { TEST_TENANT_SCHEMA } from './tenant-schema.js'

/** Apps sharing a central database made by another buildApp call: closed before it is dropped. */
const sharers = new WeakMap<object, FastifyInstance[]>()

export interface TestApp {
  app: FastifyInstance
  central: CentralDatabase
}

/**
 * A Fastify app with fastify-tenancy on a fresh central database; `routes`
 * adds the test's routes. Closed when the test ends. Its tenants have the
 * test app's tables (TEST_TENANT_SCHEMA) unless the test gives its own.
 */
export async function buildApp (
  t: TestContext,
  options: Partial<Omit<TenancyOptions, 'database'>> & { database?: Partial<TenancyDatabaseOptions> } = {},
  routes: (app: FastifyInstance) => void | Promise<void> = () => {},
  central?: CentralDatabase
): Promise<TestApp> {
  // A central database made here is dropped after the app is closed, never under its open connections.
  const own = central === undefined ? await freshCentral(null) : null
  const db = central ?? own as CentralDatabase
  const app = Fastify({ logger: process.env.TEST_LOG === undefined ? false : { level: process.env.TEST_LOG } })
  // Strategy `shared` without its options: the app role and the shared tables (with their policies) made here.
  const shared = options.strategy === 'shared' && options.shared === undefined ? { shared: { url: (await prepareShared(db)).url } } : {}
  await app.register(tenancyPlugin, {
    ...TEST_TENANT_SCHEMA,
    ...options,
    ...shared,
    database: { url: db.url, prefix: db.prefix, ...options.database }
  })
  await routes(app)
  try {
    await app.ready()
  } catch (error) {
    // What registered before the failure (the central pool, the change listener) is let go, as an app that fails to start would.
    await app.close().catch(() => {})
    await own?.drop()
    throw error
  }
  if (central !== undefined) sharers.get(central)?.push(app)
  else sharers.set(db, [])
  t.after(async () => {
    for (const other of sharers.get(db) ?? []) await other.close()
    await app.close()
    await own?.drop()
  })
  return { app, central: db }
}
