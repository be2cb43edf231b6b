import { Migration } from '@mikro-orm/migrations'

/**
 * Tenant operations: former names kept after a rename (redirects), per-tenant
 * maintenance mode, and single-use impersonation tokens.
 */
export class Migration20261125050001Operations extends Migration {
  override async up (): Promise<void> {
    // Settings the plugin writes at start and triggers read (the database
    // cannot see the app's options otherwise).
    this.addSql(`
      create table fastify_tenancy_settings (
        name varchar(63) primary key,
        value text not null
      )`)
    this.addSql(`
      create table tenant_former_names (
        id serial primary key,
        tenant_key uuid not null references tenants (key) on delete cascade,
        kind varchar(10) not null check (kind in ('identifier', 'domain')),
        name varchar(253) not null,
        renamed_at timestamptz not null default now(),
        expires_at timestamptz not null,
        unique (kind, name)
      )`)
    this.addSql('create index tenant_former_names_tenant_key_index on tenant_former_names (tenant_key)')
    // Kept in the database so every path that renames (the API, the admin, raw
    // SQL) records the old name, and no path can hand it to another tenant
    // while it still redirects. The error is a unique violation naming the
    // identifier or the domain, as a taken name would be.
    this.addSql(`
      create function fastify_tenancy_rename_keep() returns interval language sql stable as $$
        select coalesce((select value::bigint from fastify_tenancy_settings where name = 'renames.keep_ms'), 7776000000) * interval '1 millisecond'
      $$`)
    this.addSql(`
      create function fastify_tenancy_guard_former_identifier() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from tenant_former_names f where f.kind = 'identifier' and f.name = new.identifier
                   and f.tenant_key <> new.key and f.expires_at > now()) then
          raise exception 'identifier "%" still redirects to the tenant that had it', new.identifier
            using errcode = 'unique_violation', constraint = 'tenant_former_names_identifier';
        end if;
        return new;
      end $$`)
    this.addSql(`create trigger tenants_guard_former_identifier before insert or update of identifier on tenants
      for each row execute function fastify_tenancy_guard_former_identifier()`)
    this.addSql(`
      create function fastify_tenancy_record_former_identifier() returns trigger language plpgsql as $$
      begin
        delete from tenant_former_names where kind = 'identifier' and name = new.identifier;
        insert into tenant_former_names (tenant_key, kind, name, expires_at)
          values (new.key, 'identifier', old.identifier, now() + fastify_tenancy_rename_keep())
          on conflict (kind, name) do update set tenant_key = excluded.tenant_key, renamed_at = excluded.renamed_at, expires_at = excluded.expires_at;
        return null;
      end $$`)
    this.addSql(`create trigger tenants_record_former_identifier after update of identifier on tenants
      for each row when (old.identifier is distinct from new.identifier) execute function fastify_tenancy_record_former_identifier()`)
    this.addSql(`
      create function fastify_tenancy_guard_former_domain() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from tenant_former_names f where f.kind = 'domain' and f.name = new.domain
                   and f.tenant_key <> new.tenant_key and f.expires_at > now()) then
          raise exception 'domain "%" still redirects to the tenant that had it', new.domain
            using errcode = 'unique_violation', constraint = 'tenant_former_names_domain';
        end if;
        -- The tenant takes its own former domain back: it no longer redirects.
        delete from tenant_former_names where kind = 'domain' and name = new.domain and tenant_key = new.tenant_key;
        return new;
      end $$`)
    this.addSql(`create trigger domains_guard_former_domain before insert or update of domain on domains
      for each row execute function fastify_tenancy_guard_former_domain()`)
    this.addSql(`
      create function fastify_tenancy_record_former_domain() returns trigger language plpgsql as $$
      begin
        -- A domain removed with its tenant (a cascade) has nobody to redirect to.
        if tg_op = 'UPDATE' and old.domain = new.domain then return null; end if;
        if not exists (select 1 from tenants where key = old.tenant_key) then return null; end if;
        insert into tenant_former_names (tenant_key, kind, name, expires_at)
          values (old.tenant_key, 'domain', old.domain, now() + fastify_tenancy_rename_keep())
          on conflict (kind, name) do update set tenant_key = excluded.tenant_key, renamed_at = excluded.renamed_at, expires_at = excluded.expires_at;
        return null;
      end $$`)
    this.addSql(`create trigger domains_record_former_domain after delete or update of domain on domains
      for each row execute function fastify_tenancy_record_former_domain()`)

    this.addSql(`
      create table tenant_maintenance (
        tenant_key uuid primary key references tenants (key) on delete cascade,
        message text null,
        until timestamptz null,
        allow text[] not null default '{}',
        bypass_hash varchar(64) not null,
        started_at timestamptz not null default now()
      )`)
    // Every instance keeps the (few) tenants in maintenance in memory and
    // reloads them when this fires.
    this.addSql(`
      create function fastify_tenancy_notify_maintenance() returns trigger language plpgsql as $$
      begin
        perform pg_notify('fastify_tenancy_maintenance', '');
        return null;
      end $$`)
    this.addSql(`create trigger tenant_maintenance_notify after insert or update or delete or truncate on tenant_maintenance
      for each statement execute function fastify_tenancy_notify_maintenance()`)

    this.addSql(`
      create table impersonation_tokens (
        id uuid primary key,
        token_hash varchar(64) not null unique,
        tenant_key uuid not null references tenants (key) on delete cascade,
        user_id varchar(255) not null,
        admin_id uuid null,
        admin_email varchar(255) null,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        used_at timestamptz null,
        session_hash varchar(64) null unique,
        ended_at timestamptz null
      )`)
    this.addSql('create index impersonation_tokens_tenant_key_index on impersonation_tokens (tenant_key)')
    this.addSql(`update admin_roles set permissions = array_append(permissions, 'impersonate_users')
      where name = 'owner' and not ('impersonate_users' = any (permissions))`)
  }

  override async down (): Promise<void> {
    this.addSql('update admin_roles set permissions = array_remove(permissions, \'impersonate_users\')')
    this.addSql('drop table if exists impersonation_tokens, tenant_maintenance, tenant_former_names, fastify_tenancy_settings cascade')
    this.addSql('drop trigger if exists tenants_guard_former_identifier on tenants')
    this.addSql('drop trigger if exists tenants_record_former_identifier on tenants')
    this.addSql('drop trigger if exists domains_guard_former_domain on domains')
    this.addSql('drop trigger if exists domains_record_former_domain on domains')
    this.addSql('drop function if exists fastify_tenancy_guard_former_identifier(), fastify_tenancy_record_former_identifier(), fastify_tenancy_guard_former_domain(), fastify_tenancy_record_former_domain(), fastify_tenancy_notify_maintenance(), fastify_tenancy_rename_keep()')
  }
}
