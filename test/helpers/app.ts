import Fastify, { type FastifyInstance } from 'fastify'
import type { TestContext } from 'node:test'
import { tenancyPlugin, type TenancyDatabaseOptions, type TenancyOptions } from '../../server/index.js'
import { freshCentral, type CentralDatabase } from './database.js'

export interface TestApp {
  app: FastifyInstance
  central: CentralDatabase
}

/**
 * A Fastify app with fastify-tenancy on a fresh central database; `routes`
 * adds the test's routes. Closed when the test ends.
 */
export async function buildApp (
  t: TestContext,
  options: Partial<Omit<TenancyOptions, 'database'>> & { database?: Partial<TenancyDatabaseOptions> } = {},
  routes: (app: FastifyInstance) => void | Promise<void> = () => {},
  central?: CentralDatabase
): Promise<TestApp> {
  const db = central ?? await freshCentral(t)
  const app = Fastify({ logger: process.env.TEST_LOG === '1' ? { level: 'error' } : false })
  await app.register(tenancyPlugin, {
    ...options,
    database: { url: db.url, prefix: db.prefix, ...options.database }
  })
  await routes(app)
  await app.ready()
  t.after(async () => { await app.close() })
  return { app, central: db }
}
