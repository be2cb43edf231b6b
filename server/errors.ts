import makeError, { type FastifyErrorConstructor } from '@fastify/error'

/**
 * One coded error class. Typed by the named FastifyErrorConstructor so the
 * emitted .d.ts compile under every moduleResolution (with `bundler`, the
 * default import of @fastify/error is the function, not its namespace).
 */
type CodedError<C extends string, SC extends number> = FastifyErrorConstructor<{ code: C, statusCode: SC }>
function createError<C extends string, SC extends number> (code: C, message: string, statusCode: SC): CodedError<C, SC> {
  return makeError(code, message, statusCode)
}

// Every error a user of fastify-tenancy can see is made here, once. The error
// table in docs/errors.md lists each code with what to do about it; test/errors.test.ts keeps the two
// lists identical.

/** The request names no tenant, on a route that needs one. */
export const TenantNotIdentifiedError = createError(
  'FST_TENANCY_NOT_IDENTIFIED',
  'This route needs a tenant, and the request names none: use a tenant domain or subdomain, or the configured path, header or cookie.',
  404
)

/** The request names a tenant that does not exist. */
export const UnknownTenantError = createError(
  'FST_TENANCY_UNKNOWN_TENANT',
  'No tenant is known as "%s".',
  404
)

/** The tenant exists but is not ready to serve (provisioning or failed). */
export const TenantInactiveError = createError(
  'FST_TENANCY_TENANT_INACTIVE',
  'Tenant "%s" is %s and cannot serve requests yet; try again when it is active.',
  503
)

/** The tenant was suspended by an operator. */
export const TenantSuspendedError = createError(
  'FST_TENANCY_TENANT_SUSPENDED',
  'Tenant "%s" is suspended.',
  403
)

/** The identifier taken from the request breaks the identifier rules. */
export const InvalidIdentifierError = createError(
  'FST_TENANCY_INVALID_IDENTIFIER',
  'The tenant identifier from the %s is not valid: use 1 to 63 lowercase letters, digits and dashes, not starting or ending with a dash.',
  400
)

/** The Host header is not a hostname we accept. */
export const InvalidHostError = createError(
  'FST_TENANCY_INVALID_HOST',
  'The request\'s host (its Host header, or X-Forwarded-Host from a trusted proxy) is not a valid hostname: use ASCII letters, digits, dashes and dots (no punycode), at most 253 characters, and a port of 1 to 65535.',
  400
)

/** The request carries more than one Host header. */
export const DuplicateHostError = createError(
  'FST_TENANCY_DUPLICATE_HOST',
  'The request names more than one host (two Host headers, or a request line whose host is not the Host header\'s); send exactly one.',
  400
)

/** A central route was asked for on a host that is not a central domain. */
export const CentralRouteError = createError(
  'FST_TENANCY_CENTRAL_ONLY',
  'This route is served on the central domains only.',
  404
)

/** A plugin option is missing or wrong; `ready()` rejects with it. */
export const InvalidOptionError = createError(
  'FST_TENANCY_INVALID_OPTION',
  'Option "%s" %s.',
  500
)

/** The configuration cannot do what was asked (for example a lookup the provider does not support). */
export const MisconfigurationError = createError(
  'FST_TENANCY_MISCONFIGURED',
  '%s',
  500
)

/** Tenant-only work (a tenant EntityManager, storage, cache prefix) was asked for outside a tenant context. */
export const NoTenantContextError = createError(
  'FST_TENANCY_NO_TENANT_CONTEXT',
  '%s needs a tenant context: use it in a tenant route, or inside app.tenancy.run(tenant, fn).',
  500
)

/** A storage path would leave the tenant's storage root. */
export const StoragePathError = createError(
  'FST_TENANCY_STORAGE_PATH',
  'The path "%s" leaves the tenant storage root.',
  400
)

/** A database or schema name would not be safe to use in SQL. */
export const UnsafeDatabaseNameError = createError(
  'FST_TENANCY_UNSAFE_DATABASE_NAME',
  'The database name "%s" is not safe: it must match ^[a-z0-9_]{1,63}$.',
  500
)

/** A tenant with this identifier exists already. */
export const IdentifierTakenError = createError(
  'FST_TENANCY_IDENTIFIER_TAKEN',
  'The identifier "%s" is taken (by another tenant, or as a reserved or central name); choose another.',
  409
)

/** A domain given for a tenant is not a valid, lowercase, non-central hostname. */
export const InvalidDomainError = createError(
  'FST_TENANCY_INVALID_DOMAIN',
  'The domain "%s" is not valid: %s.',
  400
)

/** A domain given for a tenant belongs to another tenant already. */
export const DomainTakenError = createError(
  'FST_TENANCY_DOMAIN_TAKEN',
  'The domain "%s" belongs to another tenant already.',
  409
)

/** A provisioning step failed; the tenant is marked failed and can be provisioned again. */
export const ProvisioningFailedError = createError(
  'FST_TENANCY_PROVISIONING_FAILED',
  'Provisioning tenant "%s" failed at step "%s": %s. The tenant is marked failed; fix the cause and call app.tenancy.provision(tenant) to retry.',
  500
)

/** The tenant's database exists already and adopting it was not asked for. */
export const DatabaseExistsError = createError(
  'FST_TENANCY_DATABASE_EXISTS',
  'Database "%s" exists already on host "%s"; pass adopt: true to use it, or drop it first.',
  409
)

/** A tenant was asked for by a name (identifier or key) that matches none. */
export const TenantNotFoundError = createError(
  'FST_TENANCY_TENANT_NOT_FOUND',
  'No tenant has the identifier or key "%s".',
  404
)

/** A change to a tenant cluster breaks its rule (a cluster with tenants has a parent tenant that is one of them). */
export const ClusterRuleError = createError(
  'FST_TENANCY_CLUSTER_RULE',
  '%s',
  409
)

/** A tenant cluster was asked for by an id that matches none. */
export const ClusterNotFoundError = createError(
  'FST_TENANCY_CLUSTER_NOT_FOUND',
  'No tenant cluster has the id "%s".',
  404
)

/** A change to a tenant (name, data, cluster) is not well-formed. */
export const InvalidTenantChangeError = createError(
  'FST_TENANCY_INVALID_CHANGE',
  'The tenant change is not valid: %s.',
  400
)

/** A tenant's status cannot go from where it is to where it was asked to go. */
export const TenantStatusError = createError(
  'FST_TENANCY_STATUS_TRANSITION',
  'Tenant "%s" is %s, so it cannot be %s: only an active tenant can be suspended, and only a suspended one activated.',
  409
)

/** A domain was named for a tenant that does not have it. */
export const DomainNotFoundError = createError(
  'FST_TENANCY_DOMAIN_NOT_FOUND',
  'The domain "%s" is not a domain of tenant "%s".',
  404
)

/** Strategy `shared`: a tenant table has no row-level security policy; the plugin will not register. */
export const RlsMissingError = createError(
  'FST_TENANCY_RLS_MISSING',
  'Tenant tables in schema "%s" have no row-level security policy: %s. Run `fastify-tenancy tenants:rls` (or app.tenancy.migrate()) to create them.',
  500
)

/** Strategy `shared`: a tenant table has a key that holds across tenants (a global unique or a foreign key without tenant_key); the plugin will not register. */
export const RlsGlobalKeysError = createError(
  'FST_TENANCY_RLS_GLOBAL_KEYS',
  'Tenant tables in schema "%s" have keys that hold across tenants: %s. A global unique tells one tenant what another holds and a foreign key without tenant_key lets a row point at another tenant\'s: run `fastify-tenancy tenants:rls` to make them per tenant (composite with tenant_key).',
  500
)

/** Strategy `shared`: the app role could read across tenants or leave state for the next tenant; the plugin will not register. */
export const RlsUnsafeRoleError = createError(
  'FST_TENANCY_RLS_UNSAFE_ROLE',
  'The role "%s" of shared.url could reach past row-level security or leave state for the next tenant: it %s. Remove these rights (as a superuser or the role that granted them) and start again; the README\'s threat model lists what the app role may and may not have.',
  500
)

/** The tenant is in maintenance mode; the message is the operator's. */
export const MaintenanceError = createError(
  'FST_TENANCY_MAINTENANCE',
  '%s',
  503
)

/** `app.tenancy.maintenance()` was given settings it cannot use. */
export const InvalidMaintenanceError = createError(
  'FST_TENANCY_INVALID_MAINTENANCE',
  'The maintenance settings are not valid: %s.',
  400
)

/** An impersonation token was used twice, late, for another tenant, or is unknown. */
export const ImpersonationRefusedError = createError(
  'FST_TENANCY_IMPERSONATION_REFUSED',
  'The impersonation link was refused: %s. Ask an admin for a new one.',
  403
)

/** A tenant cluster name is in use (names are unique, case aside). */
export const ClusterNameTakenError = createError(
  'FST_TENANCY_CLUSTER_NAME_TAKEN',
  'A tenant cluster named "%s" exists already; choose another name.',
  409
)

/** Too many sign-in attempts from one address (the admin's per-address limit). */
export const SignInLimitError = createError(
  'FST_TENANCY_SIGN_IN_LIMIT',
  'Too many sign-in attempts from your address: try again in %s.',
  429
)

/** An attach named a global id that the resource's central table does not hold. */
export const SyncUnknownGlobalIdError = createError(
  'FST_TENANCY_SYNC_UNKNOWN_GLOBAL_ID',
  'Synced resource "%s" has no central row with the global id "%s"; create it centrally before attaching it to a tenant.',
  404
)

/** A synced resource was asked for by a name that is not declared. */
export const SyncUnknownResourceError = createError(
  'FST_TENANCY_SYNC_UNKNOWN_RESOURCE',
  'No synced resource is named "%s"; declare it in the sync.resources option.',
  404
)

/** A lifecycle operation was asked of a tenant that is being deleted. */
export const TenantDeletingError = createError(
  'FST_TENANCY_TENANT_DELETING',
  'Tenant "%s" is being deleted; call app.tenancy.delete(tenant) again to finish deleting it.',
  409
)

/**
 * Every connection the budget allows to a database host is in use, and none
 * came free within `database.acquireTimeoutMs`. Carries a `Retry-After`
 * header (Fastify's error handler sends an error's `headers`).
 */
export const BusyError = createError(
  'FST_TENANCY_BUSY',
  'Every connection to database host "%s" is in use and none came free in time; try again in a moment (or raise database.maxConnections).',
  503
)

/** Two changes to the same rows met (a tenant moved between clusters meanwhile); retried a few times, then reported. */
export const ConcurrentChangeError = createError(
  'FST_TENANCY_CONCURRENT_CHANGE',
  'Another change to %s happened at the same moment, and retrying did not get past it; try again.',
  409
)

/** The tenant connection manager was closed (the app is shutting down). */
export const TenancyClosedError = createError(
  'FST_TENANCY_CLOSED',
  'fastify-tenancy is closed (app.close() was called), so it opens no tenant connection; send the request to a running instance.',
  503
)

/** A tenant's database or schema is gone, so its migrations cannot run. */
export const TenantDatabaseMissingError = createError(
  'FST_TENANCY_DATABASE_MISSING',
  'The %s "%s" does not exist: provision the tenant again (app.tenancy.provision) or delete it.',
  500
)

/** Queued synced changes were not all applied in the time given. */
export const SyncTimeoutError = createError(
  'FST_TENANCY_SYNC_TIMEOUT',
  'Synced changes are still waiting after the timeout (%s ms): check that a sync worker runs and the tenant databases answer, or wait longer.',
  503
)

/** The command was used wrongly (a flag's value, a task module). Exit code 2. */
export const CliUsageError = createError(
  'FST_TENANCY_CLI_USAGE',
  '%s',
  400
)

/** The command cannot get usable plugin options (no DATABASE_URL or config file, a config that fails). Exit code 2. */
export const CliConfigError = createError(
  'FST_TENANCY_CLI_CONFIG',
  '%s',
  400
)

/** A file the command was pointed at does not exist. Exit code 2. */
export const FileNotFoundError = createError(
  'FST_TENANCY_FILE_NOT_FOUND',
  'The %s %s does not exist.',
  400
)

/** A file the command was pointed at cannot be loaded. Exit code 2. */
export const FileNotLoadableError = createError(
  'FST_TENANCY_FILE_NOT_LOADABLE',
  'Cannot load the %s %s: %s',
  400
)

/** An admin account with this email exists already. */
export const AdminExistsError = createError(
  'FST_TENANCY_ADMIN_EXISTS',
  'An admin with the email %s exists already; nothing was created.',
  409
)

/** No admin role has this name. */
export const RoleNotFoundError = createError(
  'FST_TENANCY_ROLE_NOT_FOUND',
  'There is no admin role named "%s".',
  404
)

/** No admin account has this email. */
export const AdminNotFoundError = createError(
  'FST_TENANCY_ADMIN_NOT_FOUND',
  'There is no admin with the email %s; nothing was changed. fastify-tenancy admin:create makes one.',
  404
)

/** Something that destroys data was not confirmed. */
export const NotConfirmedError = createError(
  'FST_TENANCY_NOT_CONFIRMED',
  'Not confirmed: nothing was deleted. %s',
  400
)

/** The connection that follows changes made by other instances was lost (logged; it reconnects by itself). */
export const ListenerLostError = createError(
  'FST_TENANCY_LISTENER_LOST',
  'The central change listener %s; the tenant cache is emptied and off until it reconnects, which it does by itself, and maintenance is read again then. Check the central database if this repeats.',
  503
)

/**
 * A database the request needs could not be reached (PostgreSQL down or
 * restarting, a tenant's database missing, a login refused). Carries
 * `Retry-After`; the body says nothing internal (no host, port, database name,
 * SQL or driver message): the log has the detail, once per fault.
 */
export const DatabaseUnavailableError = createError(
  'FST_TENANCY_DATABASE_UNAVAILABLE',
  'The database is not available right now; try again in a moment.',
  503
)

/**
 * A database server broke the SCRAM-SHA-256 login of a tenant connection: a
 * step out of order, a challenge that cannot be answered, a signature that
 * does not prove it knows the password, or a message of impossible length.
 * The connection is closed before any statement; a request meets it as
 * FST_TENANCY_DATABASE_UNAVAILABLE, and the log has this detail.
 */
export const DatabaseLoginError = createError(
  'FST_TENANCY_DATABASE_LOGIN_FAILED',
  'The database server broke the SCRAM login (%s); the connection was closed before any statement. Check that the URL names the right server.',
  503
)

/** The command failed for a reason that has no code of its own (an error of the database or of the app's task module). Exit code 1. */
export const CliFailedError = createError(
  'FST_TENANCY_CLI_FAILED',
  '%s',
  500
)

/** A route no tenancy hook can reach (outside the instance the plugin is registered on); `ready()` rejects with it. */
export const UnguardedRouteError = createError(
  'FST_TENANCY_ROUTE_UNGUARDED',
  'These routes cannot get the tenancy decision: %s. %s',
  500
)

/**
 * An EntityManager leased for one tenant, used while another tenant's context
 * runs (kept in a closure or a module from an earlier request): refused
 * before it reads its identity map, which holds the first tenant's entities.
 */
export const TenantMismatchError = createError(
  'FST_TENANCY_WRONG_TENANT',
  'An EntityManager of tenant %s was used in the context of tenant %s: use the running tenant\'s (request.tenantEm, or app.tenancy.em()), never one kept from another request.',
  500
)

/**
 * A move holds the tenant's requests (for under a second online), and this
 * request waited `database.acquireTimeoutMs` without the move ending. Carries
 * `Retry-After`.
 */
export const TenantMovingError = createError(
  'FST_TENANCY_MOVING',
  'Tenant "%s" is moving to another database host; try again in a moment.',
  503
)

/**
 * The request's route needs a tenant migration (`config.tenancy.requires`, or
 * the plugin's `requires`) the tenant has not run yet, or the tenant is being
 * migrated and this request waited `database.acquireTimeoutMs` without the
 * migration ending. Carries `Retry-After`.
 */
export const TenantMigratingError = createError(
  'FST_TENANCY_MIGRATING',
  'Tenant "%s" does not have %s yet, which this route needs (its migration is running, has not run yet, or failed); try again later.',
  503
)

/** A move asks for something that cannot be (an unknown host, the host the tenant is on, strategy shared, nothing to abort). */
export const InvalidMoveError = createError(
  'FST_TENANCY_INVALID_MOVE',
  'Cannot move tenant "%s": %s.',
  400
)

/** The servers cannot replicate the tenant online (wal_level, rights, a table without a primary key). */
export const MoveUnavailableError = createError(
  'FST_TENANCY_MOVE_UNAVAILABLE',
  'Tenant "%s" cannot move online: %s. Fix that, or move it offline (--offline, { offline: true }): its requests are then held while it is copied.',
  409
)

/** Another move of this tenant is under way (or was cut short) to another host. */
export const MoveInProgressError = createError(
  'FST_TENANCY_MOVE_IN_PROGRESS',
  'Tenant "%s" is already moving to host "%s": finish that move (move it there again) or undo it (--abort) first.',
  409
)

/** The tenant's data (a database, a bundle) was made by newer migrations than this app has. */
export const SchemaTooNewError = createError(
  'FST_TENANCY_SCHEMA_TOO_NEW',
  'The tenant data is at migration %s, which this app does not have: deploy the app version that has it first.',
  409
)

/** A step of a move did not finish in time or PostgreSQL's replication reported an error; the move stays where it was. */
export const MoveStalledError = createError(
  'FST_TENANCY_MOVE_STALLED',
  'The move stalled: %s. Run it again to go on from its last step, or undo it (--abort).',
  503
)

/** Two tenants cannot be swapped (the same tenant, one being moved, deleted or not active). */
export const InvalidSwapError = createError(
  'FST_TENANCY_INVALID_SWAP',
  'Tenant "%s" cannot be swapped with "%s": %s.',
  409
)

/** A tenant bundle cannot be read (not a bundle, a format this version does not read, cut short). */
export const InvalidBundleError = createError(
  'FST_TENANCY_INVALID_BUNDLE',
  'This is not a tenant bundle this version can import: %s.',
  400
)

/**
 * A transaction-mode pooler in front of a database that tenants share keeps
 * one client's session state on the server connection it hands to the next.
 */
export const PoolerResetError = createError(
  'FST_TENANCY_POOLER_RESET',
  'The pooler in front of %s hands server connections on with their session state (a setting made in one transaction was still there in the next): set server_reset_query = DISCARD ALL and server_reset_query_always = 1 in PgBouncer, or declare database.pooler: \'session\' if it pools whole sessions.',
  500
)

/** The central database's server cannot be reached at register (refused, unknown host, timed out). */
export const CentralUnreachableError = createError(
  'FST_TENANCY_CENTRAL_UNREACHABLE',
  'Cannot reach the central database of database.url: %s.',
  500
)

/** The central database's server refused the login of database.url (wrong password, unknown role). */
export const CentralLoginRefusedError = createError(
  'FST_TENANCY_CENTRAL_LOGIN_REFUSED',
  'The central database refused the login of role "%s" given in database.url (%s): check the user name and password in database.url.',
  500
)

/** The central database does not exist, and the role of database.url may not create it. */
export const CentralDatabaseMissingError = createError(
  'FST_TENANCY_CENTRAL_DATABASE_MISSING',
  'The central database "%s" named in database.url does not exist, and role "%s" may not create databases: create it (createdb %s), or let the role create databases (ALTER ROLE ... CREATEDB).',
  500
)

/** The central schema cannot be made: the role of database.url may not create schemas there. */
export const CentralSchemaError = createError(
  'FST_TENANCY_CENTRAL_SCHEMA',
  'Cannot create schema "%s" for the central tables: role "%s" may not create schemas in database "%s". Create the schema for the role (CREATE SCHEMA <schema> AUTHORIZATION <role>), or grant the role CREATE on the database.',
  500
)

/** The central database has not been migrated. */
export const CentralNotMigratedError = createError(
  'FST_TENANCY_CENTRAL_NOT_MIGRATED',
  'The central database has no fastify-tenancy tables in schema "%s": run `fastify-tenancy central:migrate`, or register the plugin with migrateCentral: true.',
  500
)

/** The app's tenant entities and its tenant migrations disagree (migration:check). */
export const TenantMigrationsOutdatedError = createError(
  'FST_TENANCY_MIGRATIONS_OUTDATED',
  'The tenant entities and the tenant migrations disagree (%s): run `fastify-tenancy migration:create` to write the missing migration, then `fastify-tenancy tenants:migrate`.',
  500
)

/**
 * fastify-tenancy/testing's checkIsolation found a route that served or
 * changed another tenant's rows; the error's `report` lists every leak.
 */
export const IsolationLeakError = createError(
  'FST_TENANCY_ISOLATION_LEAK',
  '%s',
  500
)

/** A rollout id no rollout has. */
export const RolloutNotFoundError = createError(
  'FST_TENANCY_ROLLOUT_NOT_FOUND',
  'No rollout has the id "%s"; fastify-tenancy tenants:rollouts lists them.',
  404
)

/** A rollout that finished (done or failed) cannot be resumed or halted. */
export const RolloutFinishedError = createError(
  'FST_TENANCY_ROLLOUT_FINISHED',
  'Rollout %s is %s already: start a new one to run its tenants again.',
  409
)

/** Another instance holds the rollout's lease. */
export const RolloutBusyError = createError(
  'FST_TENANCY_ROLLOUT_BUSY',
  'Rollout %s is being run by %s (its lease runs until %s): wait for it to finish, or resume it once that lease has expired.',
  409
)

/** A rollout's options are not usable (a bad --canary, --max-failures, --order, --canary-wait). */
export const InvalidRolloutError = createError(
  'FST_TENANCY_INVALID_ROLLOUT',
  '%s',
  400
)

/** Every code above, for the check of docs/errors.md. */
export const errorCodes = [
  TenantNotIdentifiedError, UnknownTenantError, TenantInactiveError, TenantSuspendedError,
  InvalidIdentifierError, InvalidHostError, CentralRouteError, InvalidOptionError,
  MisconfigurationError, NoTenantContextError, StoragePathError, UnsafeDatabaseNameError,
  IdentifierTakenError, InvalidDomainError, DomainTakenError, ProvisioningFailedError,
  DatabaseExistsError, TenantNotFoundError, ClusterRuleError, ClusterNotFoundError,
  InvalidTenantChangeError, TenantStatusError, DomainNotFoundError,
  RlsMissingError, RlsGlobalKeysError, RlsUnsafeRoleError,
  MaintenanceError, InvalidMaintenanceError, ImpersonationRefusedError,
  ClusterNameTakenError, SignInLimitError,
  SyncUnknownGlobalIdError, SyncUnknownResourceError,
  DuplicateHostError, TenantDeletingError,
  BusyError,
  ConcurrentChangeError, TenancyClosedError, TenantDatabaseMissingError, SyncTimeoutError,
  CliUsageError, CliConfigError, FileNotFoundError, FileNotLoadableError, AdminExistsError,
  RoleNotFoundError, AdminNotFoundError, NotConfirmedError, ListenerLostError,
  DatabaseUnavailableError, DatabaseLoginError, CliFailedError, UnguardedRouteError,
  TenantMovingError, TenantMigratingError, InvalidMoveError, MoveUnavailableError, MoveInProgressError,
  SchemaTooNewError, InvalidBundleError, InvalidSwapError, MoveStalledError,
  TenantMismatchError, PoolerResetError,
  CentralUnreachableError, CentralLoginRefusedError, CentralDatabaseMissingError, CentralSchemaError, CentralNotMigratedError,
  TenantMigrationsOutdatedError, IsolationLeakError,
  RolloutNotFoundError, RolloutFinishedError, RolloutBusyError, InvalidRolloutError
].map((E) => new E().code)
