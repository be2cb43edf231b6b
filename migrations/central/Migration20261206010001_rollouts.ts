import { Migration } from '@mikro-orm/migrations'

/**
 * The rollout ledger: each migrate, rollback or seed over many tenants is a
 * rollout with a row per tenant, so a crashed run resumes where it stopped
 * (server/rollouts/rollout-ledger.ts holds every statement on these tables).
 */
export class Migration20261206010001Rollouts extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table tenant_rollouts (
        id bigint generated always as identity primary key,
        operation text not null check (operation in ('migrate', 'rollback', 'seed')),
        migrations text[] not null default '{}',
        started_by text not null,
        options jsonb not null default '{}',
        status text not null check (status in ('running', 'waiting', 'halted', 'done', 'failed')),
        released boolean not null default true,
        go_at timestamptz null,
        max_failures integer null,
        failures integer not null default 0,
        halt_reason text null,
        owner text null,
        lease_until timestamptz null,
        lease_ms integer not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        finished_at timestamptz null
      )`)
    this.addSql(`
      create table tenant_rollout_tenants (
        rollout_id bigint not null references tenant_rollouts (id) on delete cascade,
        tenant_key uuid not null,
        identifier text not null,
        host text not null,
        wave integer not null,
        position integer not null,
        status text not null check (status in ('pending', 'running', 'done', 'failed', 'skipped')),
        migrations text[] not null default '{}',
        error text null,
        claimed_by text null,
        started_at timestamptz null,
        finished_at timestamptz null,
        primary key (rollout_id, tenant_key)
      )`)
    // The next tenant of a wave on a host is an index walk, however many are done.
    this.addSql("create index tenant_rollout_tenants_pending_index on tenant_rollout_tenants (rollout_id, wave, host, position) where status = 'pending'")
    this.addSql('create index tenant_rollout_tenants_status_index on tenant_rollout_tenants (rollout_id, status)')
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists tenant_rollout_tenants')
    this.addSql('drop table if exists tenant_rollouts')
  }
}
