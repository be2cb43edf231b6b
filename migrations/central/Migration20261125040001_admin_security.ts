import { Migration } from '@mikro-orm/migrations'

/**
 * Admin hardening: an idle timeout on sessions, sign-in backoff counted per
 * account and address (instead of a hard lock on the account), unique
 * cluster names, and the audit log of admin actions.
 */
export class Migration20261125040001AdminSecurity extends Migration {
  override async up (): Promise<void> {
    this.addSql('alter table admin_sessions add column last_seen_at timestamptz not null default now()')
    this.addSql('create index admin_sessions_expires_at_index on admin_sessions (expires_at)')
    // The hard lock is gone: anyone who knew an email could keep its owner out.
    this.addSql('alter table admins drop column if exists failed_attempts, drop column if exists locked_until')
    // Keyed by a hash of (email, address) whether or not the account exists, so the table tells nothing either.
    this.addSql(`
      create table admin_sign_in_failures (
        key char(64) primary key,
        failures int not null default 0,
        blocked_until timestamptz null,
        last_failure_at timestamptz not null default now()
      )`)
    this.addSql('create index admin_sign_in_failures_last_failure_at_index on admin_sign_in_failures (last_failure_at)')
    // Two clusters named alike (case aside) are one too many; the database decides between simultaneous creates.
    this.addSql('create unique index tenant_clusters_name_unique on tenant_clusters (lower(name))')
    // No foreign keys: the record outlives the tenant, cluster or admin it names.
    this.addSql(`
      create table admin_audit_log (
        id bigserial primary key,
        at timestamptz not null default now(),
        actor_id uuid null,
        actor_email varchar(255) not null,
        action varchar(64) not null,
        tenant_key uuid null,
        tenant_identifier varchar(63) null,
        cluster_id uuid null,
        cluster_name varchar(255) null,
        change jsonb not null default '{}'
      )`)
    this.addSql('create index admin_audit_log_at_index on admin_audit_log (at desc)')
    this.addSql('create index admin_audit_log_tenant_key_index on admin_audit_log (tenant_key, at desc)')
    this.addSql('create index admin_audit_log_cluster_id_index on admin_audit_log (cluster_id, at desc)')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists admin_audit_log')
    this.addSql('drop index if exists tenant_clusters_name_unique')
    this.addSql('drop table if exists admin_sign_in_failures')
    this.addSql('alter table admins add column failed_attempts int not null default 0, add column locked_until timestamptz null')
    this.addSql('drop index if exists admin_sessions_expires_at_index')
    this.addSql('alter table admin_sessions drop column if exists last_seen_at')
  }
}
