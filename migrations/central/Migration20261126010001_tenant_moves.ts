import { Migration } from '@mikro-orm/migrations'

/**
 * Tenants that move between database hosts. `tenants.held_at` is set while a
 * move holds the tenant's requests (the row's change notice tells every
 * instance, which then holds them too). `tenant_moves` records each move and
 * the last step it finished, so a move cut short by a crash can be finished
 * or undone; at most one move of a tenant runs at once. A finished move keeps
 * its source until `keep_until`, then a sweep drops it.
 */
export class Migration20261126010001TenantMoves extends Migration {
  override async up (): Promise<void> {
    this.addSql('alter table tenants add column held_at timestamptz')
    this.addSql(`
      create table tenant_moves (
        id bigserial primary key,
        tenant_key uuid not null,
        mode varchar(10) not null check (mode in ('online', 'offline')),
        from_host varchar(63) not null,
        to_host varchar(63) not null,
        database_name varchar(63) not null,
        step varchar(20) not null,
        state varchar(10) not null default 'running' check (state in ('running', 'done', 'aborted')),
        error text,
        started_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        switched_at timestamptz,
        keep_until timestamptz,
        source_dropped_at timestamptz
      )`)
    this.addSql('create unique index tenant_moves_one_running on tenant_moves (tenant_key) where state = \'running\'')
    this.addSql('create index tenant_moves_tenant on tenant_moves (tenant_key, id)')
    this.addSql('create index tenant_moves_kept on tenant_moves (keep_until) where source_dropped_at is null and keep_until is not null')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists tenant_moves')
    this.addSql('alter table tenants drop column if exists held_at')
  }
}
