import type { MikroORM } from '@mikro-orm/core'
import { quoteIdent } from './names.js'

import { DEFAULT_CENTRAL_SCHEMA } from '../entities/central/schema.js'

// The entities declare it; the rest of the library finds it here with the other central names.
export { DEFAULT_CENTRAL_SCHEMA }

/** The central tables of ours, all in the central schema (an app's own tables stay where the app keeps them). */
export const CENTRAL_TABLE_NAMES = [
  'tenants', 'domains', 'tenant_clusters', 'users', 'tenant_users', 'tenant_resources',
  'admin_roles', 'admins', 'admin_role_assignments', 'admin_sessions', 'admin_sign_in_failures', 'admin_audit_log', 'admin_fleet_runs',
  'tenant_former_names', 'tenant_maintenance', 'impersonation_tokens',
  'fastify_tenancy_settings', 'fastify_tenancy_sync_state', 'fastify_tenancy_sync_outbox', 'fastify_tenancy_sync_inbox',
  'fastify_tenancy_migrations', 'tenant_moves', 'tenant_migration_states',
  'tenant_rollouts', 'tenant_rollout_tenants'
] as const
export type CentralTableName = typeof CENTRAL_TABLE_NAMES[number]

/**
 * The central tables' names as SQL writes them, schema-qualified and quoted:
 * `t.tenants` is `"tenancy"."tenants"`, `t.sequence('fastify_tenancy_sync_version')`
 * the qualified name of a sequence as a string literal for `nextval()`.
 * Raw SQL on central tables names them through this, never bare (an app's
 * `users` or `domains` table may sit in its search path).
 */
export type CentralTables = Readonly<Record<CentralTableName, string>> & {
  /** The schema itself, unquoted. */
  readonly schema: string
  /** `'"tenancy"."<name>"'`, a literal for nextval() and regclass casts. */
  readonly literal: (name: string) => string
}

const made = new Map<string, CentralTables>()

/** The qualified names of the central tables in `schema` (made once per schema). */
export function centralTablesIn (schema: string): CentralTables {
  let tables = made.get(schema)
  if (tables === undefined) {
    const s = quoteIdent(schema)
    const names = Object.fromEntries(CENTRAL_TABLE_NAMES.map((name) => [name, `${s}.${quoteIdent(name)}`]))
    tables = Object.freeze({ ...names, schema, literal: (name: string) => `'${s}.${quoteIdent(name)}'` }) as CentralTables
    made.set(schema, tables)
  }
  return tables
}

/**
 * The schema the central entities of a MikroORM instance live in: the
 * plugin's own central ORM, or an app's that was given `centralEntitiesIn(schema)`.
 */
export function centralSchemaOf (orm: Pick<MikroORM, 'getMetadata'>): string {
  return orm.getMetadata().find('Tenant')?.schema ?? DEFAULT_CENTRAL_SCHEMA
}

/** The qualified central table names for the central MikroORM instance `orm` (the helper raw central SQL uses). */
export function centralTables (orm: Pick<MikroORM, 'getMetadata'>): CentralTables {
  return centralTablesIn(centralSchemaOf(orm))
}
