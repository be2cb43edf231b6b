import { Migration } from '@mikro-orm/migrations'

/** Admin sign-in: server-side sessions (so logout and deactivation end them) and a lock after failed attempts. */
export class Migration20261122000003AdminSessions extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table admin_sessions (
        id char(64) primary key,
        admin_id uuid not null references admins (id) on delete cascade,
        flash jsonb not null default '[]',
        created_at timestamptz not null default now(),
        expires_at timestamptz not null
      )`)
    this.addSql('create index admin_sessions_admin_id_index on admin_sessions (admin_id)')
    this.addSql('alter table admins add column failed_attempts int not null default 0')
    this.addSql('alter table admins add column locked_until timestamptz null')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists admin_sessions')
    this.addSql('alter table admins drop column if exists failed_attempts, drop column if exists locked_until')
  }
}
