import { Migration } from '@mikro-orm/migrations'

/** "Migrate all" runs of the admin's fleet page: progress kept in a row, so it survives a page reload and shows on every instance. */
export class Migration20261125040002AdminFleetRuns extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table admin_fleet_runs (
        id bigserial primary key,
        started_by varchar(255) not null,
        started_at timestamptz not null default now(),
        heartbeat_at timestamptz not null default now(),
        finished_at timestamptz null,
        interrupted boolean not null default false,
        total int not null,
        done int not null default 0,
        failed int not null default 0,
        failures jsonb not null default '[]'
      )`)
    // At most one run at a time: two operators pressing "Migrate all" together start one run.
    this.addSql('create unique index admin_fleet_runs_one_running on admin_fleet_runs ((true)) where finished_at is null')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists admin_fleet_runs')
  }
}
