import { Migration } from '@mikro-orm/migrations'

/** Tables of ours that an installation made before the central schema existed keeps in `public`. */
const TABLES = [
  'tenants', 'domains', 'tenant_clusters', 'users', 'tenant_users', 'tenant_resources',
  'admin_roles', 'admins', 'admin_role_assignments', 'admin_sessions', 'admin_sign_in_failures', 'admin_audit_log', 'admin_fleet_runs',
  'tenant_former_names', 'tenant_maintenance', 'impersonation_tokens',
  'fastify_tenancy_settings', 'fastify_tenancy_sync_state', 'fastify_tenancy_sync_outbox', 'fastify_tenancy_sync_inbox'
]

/** Our functions, with their argument types (a function is named by both). */
const FUNCTIONS = [
  'fastify_tenancy_notify_tenant_change()', 'fastify_tenancy_check_cluster(uuid)', 'fastify_tenancy_tenants_cluster_check()',
  'fastify_tenancy_clusters_parent_check()', 'fastify_tenancy_notify_tenant_row()', 'fastify_tenancy_rename_keep()',
  'fastify_tenancy_guard_former_identifier()', 'fastify_tenancy_record_former_identifier()', 'fastify_tenancy_guard_former_domain()',
  'fastify_tenancy_record_former_domain()', 'fastify_tenancy_notify_maintenance()', 'fastify_tenancy_lock_names(text, text, text)',
  'fastify_tenancy_lock_removed_domain()'
]

const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`

/**
 * The central tables in a schema of their own (`database.schema`, default
 * `tenancy`), so they sit beside an app's `users`, `domains` or `admins`.
 *
 * A new installation made them there already (every central migration runs
 * with the central schema as its search path); an installation made before
 * has them in `public`, and this moves each one that the central schema does
 * not have yet: tables with their rows, indexes, constraints, triggers and
 * serial sequences, the sync version sequence and the functions (ALTER ...
 * SET SCHEMA keeps every row and every reference, which PostgreSQL holds by
 * object id). A table the central schema has already is never taken from
 * `public`: that one is the app's.
 *
 * Then each function's search path is fixed to the central schema: triggers
 * run with the search path of whoever wrote the row, which names the app's
 * schemas, not ours.
 */
export class Migration20261125070001TenancySchema extends Migration {
  /** The central schema, unquoted (checked by the caller). */
  protected centralSchema (): string {
    return 'tenancy'
  }

  override async up (): Promise<void> {
    const schema = this.centralSchema()
    const s = `"${schema}"`
    // The schema is made before any central migration runs (migrateCentral), by a role that may.
    this.addSql(`
      do $$
      declare
        name text;
      begin
        foreach name in array array[${TABLES.map(literal).join(', ')}] loop
          if to_regclass(format('public.%I', name)) is not null and to_regclass(format('%I.%I', ${literal(schema)}, name)) is null then
            execute format('alter table public.%I set schema %I', name, ${literal(schema)});
          end if;
        end loop;
        if to_regclass('public.fastify_tenancy_sync_version') is not null and to_regclass(format('%I.fastify_tenancy_sync_version', ${literal(schema)})) is null then
          execute format('alter sequence public.fastify_tenancy_sync_version set schema %I', ${literal(schema)});
        end if;
        foreach name in array array[${FUNCTIONS.map(literal).join(', ')}] loop
          if to_regprocedure('public.' || name) is not null and to_regprocedure(format('%I.', ${literal(schema)}) || name) is null then
            execute format('alter function public.%s set schema %I', name, ${literal(schema)});
          end if;
        end loop;
      end $$`)
    for (const fn of FUNCTIONS) this.addSql(`alter function ${s}.${fn} set search_path = ${s}`)
  }

  override async down (): Promise<void> {
    const schema = this.centralSchema()
    const s = `"${schema}"`
    for (const fn of FUNCTIONS) this.addSql(`alter function ${s}.${fn} reset search_path`)
    this.addSql(`
      do $$
      declare
        name text;
      begin
        foreach name in array array[${TABLES.map(literal).join(', ')}] loop
          if to_regclass(format('%I.%I', ${literal(schema)}, name)) is not null and to_regclass(format('public.%I', name)) is null then
            execute format('alter table %I.%I set schema public', ${literal(schema)}, name);
          end if;
        end loop;
        if to_regclass(format('%I.fastify_tenancy_sync_version', ${literal(schema)})) is not null and to_regclass('public.fastify_tenancy_sync_version') is null then
          execute format('alter sequence %I.fastify_tenancy_sync_version set schema public', ${literal(schema)});
        end if;
        foreach name in array array[${FUNCTIONS.map(literal).join(', ')}] loop
          if to_regprocedure(format('%I.', ${literal(schema)}) || name) is not null and to_regprocedure('public.' || name) is null then
            execute format('alter function %I.%s set schema public', ${literal(schema)}, name);
          end if;
        end loop;
      end $$`)
  }
}
