import { Migration } from '@mikro-orm/migrations'

/**
 * Resource syncing for any resource, delivered per destination:
 * - `tenant_resources`: one shared mapping table for resources that do not
 *   have a pivot of their own (Tenancy for Laravel v4's polymorphic mapping);
 * - the central outbox holds one row per (change, destination tenant) with
 *   its attempts and the time it may be tried again, so one unreachable
 *   tenant database holds up only the changes bound for it;
 * - the inbox remembers which tenant changes reached the central database,
 *   so a change forwarded twice (a crash between the two commits) is applied once.
 */
export class Migration20261125020001SyncDelivery extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table tenant_resources (
        id bigserial primary key,
        tenant_key uuid not null references tenants (key) on delete cascade,
        resource_type varchar(63) not null,
        global_id varchar(64) not null,
        created_at timestamptz not null default now(),
        unique (tenant_key, resource_type, global_id)
      )`)
    this.addSql('create index tenant_resources_global_id_index on tenant_resources (resource_type, global_id)')
    this.addSql(`
      alter table fastify_tenancy_sync_outbox
        add column destination uuid null,
        add column attempts int not null default 0,
        add column available_at timestamptz not null default now(),
        add column last_error text null`)
    this.addSql('create index fastify_tenancy_sync_outbox_available_index on fastify_tenancy_sync_outbox (available_at)')
    this.addSql(`
      create table fastify_tenancy_sync_inbox (
        id uuid primary key,
        received_at timestamptz not null default now()
      )`)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists fastify_tenancy_sync_inbox, tenant_resources')
    this.addSql('drop index if exists fastify_tenancy_sync_outbox_available_index')
    this.addSql(`
      alter table fastify_tenancy_sync_outbox
        drop column if exists destination, drop column if exists attempts,
        drop column if exists available_at, drop column if exists last_error`)
  }
}
