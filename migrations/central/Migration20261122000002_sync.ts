import { Migration } from '@mikro-orm/migrations'

/**
 * Resource syncing bookkeeping in the central database: a sequence that
 * orders every synced change, the newest version applied per resource (so an
 * older change never overwrites a newer one), and an outbox of changes
 * written in the same transaction as the change itself.
 */
export class Migration20261122000002Sync extends Migration {
  override async up (): Promise<void> {
    this.addSql('create sequence fastify_tenancy_sync_version')
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
    this.addSql('drop sequence if exists fastify_tenancy_sync_version')
  }
}
