import { Migration } from '@mikro-orm/migrations'

const NOW = 'now()'
const CLOCK = 'fastify_tenancy_now()'

/** The four former-name triggers, judging time by `now` (an SQL expression). */
function formerNameTriggers (now: string): string[] {
  return [`
      create or replace function fastify_tenancy_guard_former_identifier() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_lock_names('identifier', new.identifier, case when tg_op = 'UPDATE' then old.identifier end);
        if exists (select 1 from tenant_former_names f where f.kind = 'identifier' and f.name = new.identifier
                   and f.tenant_key <> new.key and f.expires_at > ${now}) then
          raise exception 'identifier "%" still redirects to the tenant that had it', new.identifier
            using errcode = 'unique_violation', constraint = 'tenant_former_names_identifier';
        end if;
        return new;
      end $$`, `
      create or replace function fastify_tenancy_record_former_identifier() returns trigger language plpgsql as $$
      begin
        delete from tenant_former_names where kind = 'identifier' and name = new.identifier;
        insert into tenant_former_names (tenant_key, kind, name, renamed_at, expires_at)
          values (new.key, 'identifier', old.identifier, ${now}, ${now} + fastify_tenancy_rename_keep())
          on conflict (kind, name) do update set tenant_key = excluded.tenant_key, renamed_at = excluded.renamed_at, expires_at = excluded.expires_at;
        return null;
      end $$`, `
      create or replace function fastify_tenancy_guard_former_domain() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_lock_names('domain', new.domain, case when tg_op = 'UPDATE' then old.domain end);
        if exists (select 1 from tenant_former_names f where f.kind = 'domain' and f.name = new.domain
                   and f.tenant_key <> new.tenant_key and f.expires_at > ${now}) then
          raise exception 'domain "%" still redirects to the tenant that had it', new.domain
            using errcode = 'unique_violation', constraint = 'tenant_former_names_domain';
        end if;
        delete from tenant_former_names where kind = 'domain' and name = new.domain and tenant_key = new.tenant_key;
        return new;
      end $$`, `
      create or replace function fastify_tenancy_record_former_domain() returns trigger language plpgsql as $$
      begin
        -- A domain removed with its tenant (a cascade) has nobody to redirect to.
        if tg_op = 'UPDATE' and old.domain = new.domain then return null; end if;
        if not exists (select 1 from tenants where key = old.tenant_key) then return null; end if;
        insert into tenant_former_names (tenant_key, kind, name, renamed_at, expires_at)
          values (old.tenant_key, 'domain', old.domain, ${now}, ${now} + fastify_tenancy_rename_keep())
          on conflict (kind, name) do update set tenant_key = excluded.tenant_key, renamed_at = excluded.renamed_at, expires_at = excluded.expires_at;
        return null;
      end $$`]
}

/**
 * Former names follow the plugin's clock (the `clock` option): its writes put
 * their time in the transaction setting `fastify_tenancy.now`, and the
 * triggers record and judge a name's expiry by it, so a name stops
 * redirecting and becomes free to take at the same moment. Writes without it
 * (plain SQL) use the database's now().
 */
/** The functions this migration (re)creates: triggers run with the writer's search path, so each keeps the central schema's. */
const FUNCTIONS = ['fastify_tenancy_guard_former_identifier()', 'fastify_tenancy_record_former_identifier()', 'fastify_tenancy_guard_former_domain()', 'fastify_tenancy_record_former_domain()']
/** The migration runs with the central schema as its search path (centralMigrationsIn): `from current` keeps that. */
const pinned = (fn: string): string => `alter function ${fn} set search_path from current`

export class Migration20261126010001RenameClock extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create function fastify_tenancy_now() returns timestamptz language sql stable as $$
        select coalesce(nullif(current_setting('fastify_tenancy.now', true), '')::timestamptz, now())
      $$`)
    for (const sql of formerNameTriggers(CLOCK)) this.addSql(sql)
    for (const fn of [...FUNCTIONS, 'fastify_tenancy_now()']) this.addSql(pinned(fn))
  }

  override async down (): Promise<void> {
    for (const sql of formerNameTriggers(NOW)) this.addSql(sql)
    for (const fn of FUNCTIONS) this.addSql(pinned(fn))
    this.addSql('drop function if exists fastify_tenancy_now()')
  }
}
