import type { FastifyError } from '@fastify/error'
import { MisconfigurationError } from './errors.js'

// One named factory per misuse that fastify-tenancy reports as a
// MisconfigurationError (code FST_TENANCY_MISCONFIGURED), in the manner of
// @mikro-orm/core's ValidationError.invalidType(...) and fastify's one code per
// misuse: a throw site says which misuse it reports (`throw misuse.noSeeder()`),
// and the sentence a user reads is written here, once. Every factory returns
// a MisconfigurationError, so what an app catches (instanceof, code) is the
// same as before the factories. test/errors.test.ts keeps free-text
// `new MisconfigurationError('...')` out of every other file.
//
// Internal: server/index.ts does not export this module.

type Misconfiguration = FastifyError

function misconfigured (message: string): Misconfiguration {
  return new MisconfigurationError(message)
}

export const misuse = {
  // Registration and the plugin's own setup.

  /** A rebalance asked of strategy shared, whose tenants share one set of tables. */
  nothingToRebalance: () => misconfigured('Tenants of strategy shared share one set of tables and do not move between hosts: there is nothing to rebalance (strategies database and schema rebalance).'),
  /** Two registrations of the plugin share a `name`. */
  registeredTwice: (name: string) => misconfigured(`fastify-tenancy is registered twice under the name "${name}"; give each registration its own \`name\` option.`),
  /** An object passed where an app.tenancy is needed is not one. */
  notATenancy: () => misconfigured('This object is not an app.tenancy made by fastify-tenancy.'),
  /** The domain resolver is configured with a provider that has no byDomain lookup. */
  domainLookupUnsupported: (provider: string) => misconfigured(`The domain resolver needs a provider that can look tenants up by domain; provider "${provider}" cannot.`),
  /** Routes (or the plugin's `requires` option) name tenant migrations that do not exist; ready() fails. */
  unknownRequiredMigrations: (names: string[]) => misconfigured(`Routes require tenant migrations that do not exist: ${names.join(', ')}. Name migrations of tenantMigrations (as tenants:status lists them), or set the plugin's requires option to existing ones.`),
  /** A bounded cache was made with no room. */
  cacheTooSmall: () => misconfigured('A cache needs room for at least one entry (max ≥ 1).'),

  // Database hosts, strategies and the central listener.

  /** A database host is named (at create, at import) that database.hosts does not have. */
  unknownDatabaseHost: (host: string) => misconfigured(`Database host "${host}" is not in the database.hosts option.`),
  /** A tenant's row names a database host that database.hosts no longer has. */
  tenantOnUnknownHost: (tenantKey: string, host: string) => misconfigured(`Tenant ${tenantKey} lives on database host "${host}", which is not in the database.hosts option.`),
  /** Strategy shared: the row-level security policies were not installed. */
  rlsNotInstalled: () => misconfigured('Row-level security is not installed in the shared database yet: run `fastify-tenancy tenants:migrate` once before the first start; it runs your tenant migrations into the shared schema and installs row-level security there.'),
  /** Strategy shared: tenants:rls on a database whose shared schema no migration has made yet. */
  migrateSharedTenant: () => misconfigured('In strategy shared a tenant\'s tables are the shared tables: they are migrated once for every tenant (tenants:migrate), not one tenant at a time, unless the tenant is isolated into a database of its own.'),
  isolatedRolesMissing: (roles: string[]) => misconfigured(`The database server of the isolated database has no role ${roles.map((r) => `"${r}"`).join(' or ')}: the isolated database keeps the shared tables' roles (the app role of shared.url and the central role), so make them on that server first.`),
  sharedSchemaMissing: (schema: string) => misconfigured(`The shared schema "${schema}" does not exist yet: run \`fastify-tenancy tenants:migrate\` first; it makes the schema with your tenant tables and installs row-level security on them.`),
  /** Strategy shared: a schema drift check per tenant was asked for. */
  driftCheckInShared: () => misconfigured('Strategy shared keeps one set of tables for every tenant: there is no schema per tenant to verify (check the shared schema itself).'),
  /** A central listener channel name that LISTEN cannot take. */
  badListenChannel: (channel: string) => misconfigured(`"${channel}" cannot be a LISTEN channel: use lowercase letters, digits and underscores.`),
  /** A subscription to the central listener after it started. */
  subscribedAfterStart: () => misconfigured('Subscribe to the central listener before it starts.'),

  // Tenant providers and what they can look up.

  /** A provider driver returned an object without one of the lookups every provider has. */
  incompleteProvider: (driver: string, method: string) => misconfigured(`Provider driver "${driver}" returned a provider without ${method}().`),
  /** The ORM provider's tenant entity is not one of the central ORM's entities. */
  providerEntityUnknown: (className: string) => misconfigured(`The ORM provider's entity ${className} is not known to the central MikroORM instance.`),
  /** A lookup by resource key on an ORM provider whose tenant entity has no resource key. */
  noResourceKeyProperty: (className: string) => misconfigured(`Tenants of entity ${className} have no resource key, so they cannot be looked up by one.`),
  /** A lookup by resource key on a database provider configured without the column (resourceKeyColumn: null). */
  noResourceKeyColumn: () => misconfigured('The database provider has no resource key column (resourceKeyColumn: null), so tenants cannot be looked up by resource key.'),
  /** Tenant storage for a tenant without a resource key. */
  noStorageWithoutResourceKey: (identifier: string) => misconfigured(`Tenant "${identifier}" has no resource key, so it has no storage folder.`),

  // Tenants, migrations and rollouts.

  /** A tenant key given at create that is not a lowercase UUID (shown cut to 40 characters). */
  badTenantKey: (key: unknown) => misconfigured(`A tenant key must be a lowercase UUID, not "${String(key).slice(0, 40)}".`),
  /** A tenant key given at create that another tenant has. */
  tenantKeyTaken: (key: string) => misconfigured(`A tenant with key ${key} exists already.`),
  /** A fan-out (migrate, seed, rollback) asked for with a concurrency that is not a whole number ≥ 1. */
  badConcurrency: () => misconfigured('concurrency must be a whole number of at least 1.'),
  /** Seeding asked for with no provisioning.seeder configured. */
  noSeeder: () => misconfigured('There is no seeder: set provisioning.seeder in the plugin options.'),

  // Jobs.

  /** A job name pg-boss cannot take as a queue name. */
  badJobName: (name: string) => misconfigured(`A job name must be 1 to 100 letters, digits, dots, dashes or underscores, not "${name}".`),
  /** pg-boss dropped a job at send (a singleton or throttle option). */
  jobNotQueued: (name: string) => misconfigured(`Job "${name}" was not queued (a singleton or throttle option may have dropped it).`),

  // Resource syncing.

  /** A synced resource name outside 1 to 63 lowercase letters, digits, dashes or underscores. */
  badSyncResourceName: (name: string) => misconfigured(`A synced resource needs a name of 1 to 63 lowercase letters, digits, dashes or underscores, not "${name}".`),
  /** Two synced resources share a name. */
  duplicateSyncResource: (name: string) => misconfigured(`Two synced resources are named "${name}".`),
  /** A synced resource with an empty (or no) attributes list. */
  syncResourceWithoutAttributes: (name: string) => misconfigured(`Synced resource "${name}" lists no attributes.`),
  /** A synced resource whose shouldSync is given but is not a function. */
  shouldSyncNotFunction: (name: string) => misconfigured(`Synced resource "${name}": shouldSync must be a function.`),
  /** A synced resource's central entity is not among the central ORM's entities. */
  syncEntityNotCentral: (name: string, className: string) => misconfigured(`Synced resource "${name}": ${className} is not a central entity (add it to centralEntities).`),
  /** A synced resource's tenant entity is not among tenantEntities. */
  syncEntityNotTenant: (name: string, className: string) => misconfigured(`Synced resource "${name}": ${className} is not in tenantEntities.`),
  /** A synced entity has no property for the global id. */
  syncNoGlobalId: (side: 'central' | 'tenant', className: string, globalId: string) => misconfigured(`The ${side} entity ${className} has no property "${globalId}" for the global id.`),
  /** A synced attribute the entity does not have (as a persisted scalar). */
  syncUnknownAttribute: (side: 'central' | 'tenant', className: string, attribute: string) => misconfigured(`The ${side} entity ${className} has no synced attribute "${attribute}".`),
  /** A table or column name of a sync mapping that is not a plain SQL identifier. */
  badSyncIdentifier: (name: string) => misconfigured(`"${name}" cannot be used as a table or column name by resource syncing.`),
  /** A synced entity saved through one tenant's EntityManager in another tenant's context. */
  syncedSaveInOtherTenant: (owner: string, className: string, tenant: string) => misconfigured(`An EntityManager of tenant ${owner} was used to save a ${className} in the context of tenant ${tenant}.`),

  // The admin panel.

  /** adminPlugin registered on an app without fastify-tenancy (or before it). */
  adminWithoutTenancy: () => misconfigured('The admin panel needs fastify-tenancy: register tenancyPlugin before adminPlugin.'),
  /** One of the admin's peer packages is not installed. */
  adminPeerMissing: (missing: string, peers: readonly string[]) => misconfigured(`fastify-tenancy/admin needs ${missing}, which is not installed; the admin's packages are peers an app that mounts it installs: npm install ${peers.join(' ')}`),
  /** Pico's stylesheet is neither installed nor copied into dist/assets. */
  adminStylesheetMissing: (copy: string) => misconfigured(`fastify-tenancy's admin cannot find Pico's stylesheet (looked for @picocss/pico and ${copy}); run npm run build`),
  /** An admin route without config.admin. */
  adminRouteWithoutAccess: (method: string | string[], url: string) => misconfigured(`Admin route ${String(method)} ${url} does not say who may use it (config.admin).`),
  /** An admin route whose config.admin names no permission the admin has. */
  adminRouteUnknownPermission: (url: string, permission: string) => misconfigured(`Admin route ${url} asks for an unknown permission "${permission}".`)
} as const
