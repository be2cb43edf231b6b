import { Migration } from '@mikro-orm/migrations'

/** Resource syncing bookkeeping in each tenant database: versions applied, and the outbox of this tenant's changes. */
export class Migration20261122000002TenantSync extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table fastify_tenancy_sync_state (
        resource varchar(63) not null,
        global_id varchar(64) not null,
        version bigint not null,
        primary key (resource, global_id)
      )`)
    this.addSql(`
      create table fastify_tenancy_sync_outbox (
        id bigserial primary key,
        change jsonb not null,
        created_at timestamptz not null default now()
      )`)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists fastify_tenancy_sync_outbox, fastify_tenancy_sync_state')
  }
}
