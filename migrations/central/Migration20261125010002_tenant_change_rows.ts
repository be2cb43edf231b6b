import { Migration } from '@mikro-orm/migrations'

/**
 * Tenant change notices that say what changed. Each changed row of `tenants`
 * or `domains` sends, on channel `fastify_tenancy_tenants`, a small JSON
 * payload: the tenant key(s), and the old and new identifier and resource key
 * (tenants) or domain (domains). An instance then forgets only those cache
 * entries, instead of its whole cache. TRUNCATE still sends the table name,
 * which means "forget everything". Every value is bounded by its column
 * (63 + 253 characters at most), far under PostgreSQL's 8000-byte payload
 * limit; a payload that were ever too long is sent as `*` (forget everything).
 */
export class Migration20261125010002TenantChangeRows extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create function fastify_tenancy_notify_tenant_row() returns trigger language plpgsql as $$
      declare
        payload text;
      begin
        if tg_table_name = 'tenants' then
          if tg_op = 'INSERT' then
            payload := json_build_object('t', 'tenants', 'k', json_build_array(new.key), 'i', json_build_array(new.identifier), 'r', json_build_array(new.resource_key))::text;
          elsif tg_op = 'DELETE' then
            payload := json_build_object('t', 'tenants', 'k', json_build_array(old.key), 'i', json_build_array(old.identifier), 'r', json_build_array(old.resource_key))::text;
          else
            payload := json_build_object('t', 'tenants', 'k', json_build_array(old.key, new.key), 'i', json_build_array(old.identifier, new.identifier), 'r', json_build_array(old.resource_key, new.resource_key))::text;
          end if;
        else
          if tg_op = 'INSERT' then
            payload := json_build_object('t', 'domains', 'k', json_build_array(new.tenant_key), 'd', json_build_array(new.domain))::text;
          elsif tg_op = 'DELETE' then
            payload := json_build_object('t', 'domains', 'k', json_build_array(old.tenant_key), 'd', json_build_array(old.domain))::text;
          else
            payload := json_build_object('t', 'domains', 'k', json_build_array(old.tenant_key, new.tenant_key), 'd', json_build_array(old.domain, new.domain))::text;
          end if;
        end if;
        if octet_length(payload) > 7900 then payload := '*'; end if;
        perform pg_notify('fastify_tenancy_tenants', payload);
        return null;
      end $$`)
    this.addSql('drop trigger if exists tenants_notify_change on tenants')
    this.addSql('drop trigger if exists domains_notify_change on domains')
    this.addSql(`create trigger tenants_notify_row after insert or update or delete on tenants
      for each row execute function fastify_tenancy_notify_tenant_row()`)
    this.addSql(`create trigger domains_notify_row after insert or update or delete on domains
      for each row execute function fastify_tenancy_notify_tenant_row()`)
    this.addSql(`create trigger tenants_notify_truncate after truncate on tenants
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
    this.addSql(`create trigger domains_notify_truncate after truncate on domains
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
  }

  override async down (): Promise<void> {
    this.addSql('drop trigger if exists tenants_notify_row on tenants')
    this.addSql('drop trigger if exists domains_notify_row on domains')
    this.addSql('drop trigger if exists tenants_notify_truncate on tenants')
    this.addSql('drop trigger if exists domains_notify_truncate on domains')
    this.addSql('drop function if exists fastify_tenancy_notify_tenant_row()')
    this.addSql(`create trigger tenants_notify_change after insert or update or delete or truncate on tenants
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
    this.addSql(`create trigger domains_notify_change after insert or update or delete or truncate on domains
      for each statement execute function fastify_tenancy_notify_tenant_change()`)
  }
}
