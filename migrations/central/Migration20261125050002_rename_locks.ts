import { Migration } from '@mikro-orm/migrations'

// LockSpace.names in server/database/advisory-locks.ts.
const NAMES = 0x46540005

/** The name lock as this migration made it, one lock per name (Migration20261125060001 restores it on the way down). */
export const lockNamesByName = `function fastify_tenancy_lock_names(kind text, a text, b text) returns void language plpgsql as $$
      declare
        name text;
      begin
        for name in select n from unnest(array[a, b]) as n where n is not null group by n order by n loop
          perform pg_advisory_xact_lock(${NAMES}, hashtext(kind || ':' || name));
        end loop;
      end $$`

/**
 * Giving a name up and taking it take turns: every write that frees or takes
 * an identifier or a domain first locks that name (transaction-level advisory
 * lock, in name order, so two writes never wait on each other in a circle).
 * Without it a tenant could take a name in the moment another one renames
 * away from it, before the former name is recorded.
 */
export class Migration20261125050002RenameLocks extends Migration {
  override async up (): Promise<void> {
    this.addSql(`create ${lockNamesByName}`)
    this.addSql(`
      create or replace function fastify_tenancy_guard_former_identifier() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_lock_names('identifier', new.identifier, case when tg_op = 'UPDATE' then old.identifier end);
        if exists (select 1 from tenant_former_names f where f.kind = 'identifier' and f.name = new.identifier
                   and f.tenant_key <> new.key and f.expires_at > now()) then
          raise exception 'identifier "%" still redirects to the tenant that had it', new.identifier
            using errcode = 'unique_violation', constraint = 'tenant_former_names_identifier';
        end if;
        return new;
      end $$`)
    this.addSql(`
      create or replace function fastify_tenancy_guard_former_domain() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_lock_names('domain', new.domain, case when tg_op = 'UPDATE' then old.domain end);
        if exists (select 1 from tenant_former_names f where f.kind = 'domain' and f.name = new.domain
                   and f.tenant_key <> new.tenant_key and f.expires_at > now()) then
          raise exception 'domain "%" still redirects to the tenant that had it', new.domain
            using errcode = 'unique_violation', constraint = 'tenant_former_names_domain';
        end if;
        delete from tenant_former_names where kind = 'domain' and name = new.domain and tenant_key = new.tenant_key;
        return new;
      end $$`)
    this.addSql(`
      create function fastify_tenancy_lock_removed_domain() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_lock_names('domain', old.domain, null);
        return old;
      end $$`)
    this.addSql(`create trigger domains_lock_removed_domain before delete on domains
      for each row execute function fastify_tenancy_lock_removed_domain()`)
  }

  override async down (): Promise<void> {
    this.addSql('drop trigger if exists domains_lock_removed_domain on domains')
    this.addSql('drop function if exists fastify_tenancy_lock_removed_domain()')
    this.addSql('drop function if exists fastify_tenancy_lock_names(text, text, text) cascade')
  }
}
