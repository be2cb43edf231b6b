import { Migration } from '@mikro-orm/migrations'

/** The landlord schema: tenants, domains, clusters, synced users, the pivot, admins and roles. */
export class Migration20261122000001Central extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table tenant_clusters (
        id uuid primary key,
        name varchar(255) not null,
        slug varchar(255) not null unique,
        description text null,
        parent_tenant_id uuid null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`)
    this.addSql(`
      create table tenants (
        key uuid primary key,
        identifier varchar(63) not null unique
          check (identifier ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
        resource_key uuid null unique,
        name varchar(255) not null,
        status varchar(20) not null default 'provisioning'
          check (status in ('provisioning', 'active', 'failed', 'suspended')),
        failure_reason text null,
        data jsonb not null default '{}',
        tenant_cluster_id uuid null references tenant_clusters (id) on delete set null,
        database_host varchar(63) null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`)
    this.addSql('create index tenants_tenant_cluster_id_index on tenants (tenant_cluster_id)')
    this.addSql(`alter table tenant_clusters add constraint tenant_clusters_parent_tenant_id_foreign
      foreign key (parent_tenant_id) references tenants (key) on delete set null`)
    this.addSql(`
      create table domains (
        id serial primary key,
        domain varchar(253) not null unique,
        tenant_key uuid not null references tenants (key) on delete cascade,
        is_primary boolean not null default false,
        created_at timestamptz not null default now()
      )`)
    this.addSql('create index domains_tenant_key_index on domains (tenant_key)')
    this.addSql(`
      create table users (
        id serial primary key,
        global_id varchar(64) not null unique,
        name varchar(255) not null,
        email varchar(255) not null unique,
        password varchar(255) not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`)
    this.addSql(`
      create table tenant_users (
        id serial primary key,
        tenant_key uuid not null references tenants (key) on delete cascade,
        global_user_id varchar(64) not null references users (global_id) on update cascade on delete cascade,
        created_at timestamptz not null default now(),
        unique (tenant_key, global_user_id)
      )`)
    this.addSql(`
      create table admin_roles (
        id serial primary key,
        name varchar(63) not null unique,
        permissions text[] not null default '{}'
      )`)
    this.addSql(`
      create table admins (
        id uuid primary key,
        email varchar(255) not null unique,
        name varchar(255) not null,
        password_hash varchar(255) not null,
        active boolean not null default true,
        created_at timestamptz not null default now(),
        last_login_at timestamptz null
      )`)
    this.addSql(`
      create table admin_role_assignments (
        admin_id uuid not null references admins (id) on delete cascade,
        role_id int not null references admin_roles (id) on delete cascade,
        primary key (admin_id, role_id)
      )`)
    this.addSql(`insert into admin_roles (name, permissions) values
      ('owner', '{manage_tenants,manage_tenant_groups,manage_users,manage_admins}')`)
    // Any change to tenants or domains, by this library, an admin or raw SQL,
    // tells every app instance to drop its cached tenants (see providers/invalidation.ts).
    this.addSql(`
      create function fastify_tenancy_notify_tenant_change() returns trigger language plpgsql as $$
      begin
        perform pg_notify('fastify_tenancy_tenants', tg_table_name);
        return null;
      end $$`)
    this.addSql(`create trigger tenants_notify_change after insert or update or delete or truncate on tenants
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
    this.addSql(`create trigger domains_notify_change after insert or update or delete or truncate on domains
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists admin_role_assignments, admins, admin_roles, tenant_users, users, domains cascade')
    this.addSql('alter table tenant_clusters drop constraint if exists tenant_clusters_parent_tenant_id_foreign')
    this.addSql('drop table if exists tenants, tenant_clusters cascade')
    this.addSql('drop function if exists fastify_tenancy_notify_tenant_change()')
  }
}
