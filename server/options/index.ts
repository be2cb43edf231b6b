import { InvalidOptionError } from '../errors.js'
import { applyDefaults } from './defaults.js'
import { checkRules } from './rules.js'
import { TenancyOptionsSchema, type ResolvedOptions } from './schema.js'
import { compileOptionsCheck } from './validate.js'
import { resolveSharedOptions, type CheckedSharedOptions } from '../database/shared/shared-options.js'

export {
  ROUTE_MODES, RESOLVER_NAMES, STRATEGIES, POOLER_MODES, TenancyOptionsSchema,
  type RouteMode, type PoolerMode, type ResolverName, type ProviderConfig, type TenancyOptions, type TenancyDatabaseOptions,
  type ProvisioningOptions, type SyncOptions, type SharedOptions, type ResolvedOptions
} from './schema.js'
export type { HostLoad } from '../lifecycle/placement.js'

const check = compileOptionsCheck(TenancyOptionsSchema)

// Keys Fastify itself reads from the options of `register`; they are not ours to refuse.
const REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** Checks the plugin's options once, at register, and fills in the defaults. Throws FST_TENANCY_INVALID_OPTION naming the option. */
export function resolveOptions (input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('options', 'must be an object')
  const own = Object.fromEntries(Object.entries(input).filter(([key]) => !REGISTER_KEYS.has(key)))
  check(own)
  const filled = applyDefaults(TenancyOptionsSchema, own) as Omit<ResolvedOptions, 'shared'> & { shared?: CheckedSharedOptions }
  // Defaults that depend on another option.
  const hosts = filled.database.hosts ?? { default: filled.database.url }
  const options: ResolvedOptions = {
    ...filled,
    database: { ...filled.database, hosts, defaultHost: filled.database.defaultHost ?? Object.keys(hosts)[0] as string },
    shared: filled.shared === undefined ? null : resolveSharedOptions(filled.shared, filled.database.url)
  }
  checkRules(options)
  return options
}
