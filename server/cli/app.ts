import type { FastifyInstance } from 'fastify'
import type { MikroORM } from '@mikro-orm/postgresql'
import type { TenancyOptions } from '../options/index.js'
import { centralUrl, loadOptions } from './config.js'
import { CliConfigError } from '../errors.js'

/** Options every command takes (before or after the command's name). */
export interface GlobalOptions {
  config?: string
  verbose?: boolean
}

/**
 * The options as the command uses them: the app's own, with what only a
 * long-running server wants turned off (following other instances' tenant
 * changes, working queued sync jobs in this process, the look through
 * tenant outboxes at start).
 */
export function commandOptions (options: TenancyOptions): TenancyOptions {
  const plain = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v)
  // Anything but an object (or nothing) is left as it is, for the plugin to refuse with its own message.
  const cache = options.cache === undefined || plain(options.cache) ? { ...options.cache, listen: false } : options.cache
  // A command neither works the queue nor looks through every tenant's outbox at start (the server does).
  const sync = plain(options.sync) ? { ...options.sync, worker: false, recoverOnStart: false } : options.sync
  return { ...options, cache, ...(sync === undefined ? {} : { sync }) } as TenancyOptions
}

/** Builds the app the way the user's server does (the plugin with their options, nothing listening), runs `fn`, closes the app. */
export async function withApp<T> (global: GlobalOptions, fn: (app: FastifyInstance) => Promise<T>): Promise<T> {
  const options = commandOptions(await loadOptions(global.config))
  // Loaded here, not at the top: usage mistakes and --help answer without loading Fastify and MikroORM.
  const [{ default: Fastify }, { tenancyPlugin }] = await Promise.all([import('fastify'), import('../plugin.js')])
  const app = Fastify({ logger: false })
  try {
    await app.register(tenancyPlugin, options)
    await app.ready()
  } catch (error) {
    await app.close().catch(() => {})
    const code = (error as { code?: string }).code
    // Options the plugin refuses are a configuration mistake: exit 2, like a missing config.
    if (code === 'FST_TENANCY_INVALID_OPTION' || code === 'FST_TENANCY_MISCONFIGURED') throw new CliConfigError(`The tenancy options are not usable: ${(error as Error).message}`)
    throw error
  }
  try {
    return await fn(app)
  } finally {
    await app.close()
  }
}

/** A MikroORM instance on the central database alone (no plugin): for central:migrate and admin:create. */
export async function withCentralOrm<T> (global: GlobalOptions, fn: (orm: MikroORM) => Promise<T>): Promise<T> {
  const options = await loadOptions(global.config)
  const [{ createCentralOrm }, { ensureCentralDatabase }] = await Promise.all([import('../database/central.js'), import('../database/central-database.js')])
  const url = centralUrl(options)
  await ensureCentralDatabase(url)
  const schema = (options.database as { schema?: unknown }).schema
  const orm = createCentralOrm({ url, poolSize: 2, ...(typeof schema === 'string' ? { schema } : {}) })
  try {
    return await fn(orm)
  } finally {
    await orm.close(true)
  }
}
