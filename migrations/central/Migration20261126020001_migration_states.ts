import { Migration } from '@mikro-orm/migrations'

/**
 * What each tenant database has run of the tenant migrations, as last seen
 * (by a migrate, a rollback, provisioning or a status check): the fleet can
 * be shown from here without opening a connection to every tenant database.
 * Also the indexes a user's tenant count, a page of users by name and a far
 * page of the audit log need.
 */
export class Migration20261126020001MigrationStates extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table tenant_migration_states (
        tenant_key uuid primary key references tenants (key) on delete cascade,
        executed text[] not null default '{}',
        error text null,
        checked_at timestamptz not null default now()
      )`)
    this.addSql('create index if not exists tenant_users_global_user_id_index on tenant_users (global_user_id)')
    // Users are listed and picked by name: a page of them is an index walk.
    this.addSql('create index if not exists users_lower_name_index on users (lower(name))')
    // The audit log pages by (at, id): a page far back is read from the index, then only its 50 rows.
    this.addSql('create index if not exists admin_audit_log_at_id_index on admin_audit_log (at desc, id desc)')
  }

  override async down (): Promise<void> {
    this.addSql('drop index if exists admin_audit_log_at_id_index')
    this.addSql('drop index if exists users_lower_name_index')
    this.addSql('drop index if exists tenant_users_global_user_id_index')
    this.addSql('drop table if exists tenant_migration_states')
  }
}
