import { Migration } from '@mikro-orm/migrations'

/**
 * The database holds the tenant cluster rule itself, checked at commit: a
 * cluster with tenants has a parent tenant, the parent is one of its
 * tenants, and a cluster without tenants has no parent. The application
 * keeps the same rule first (server/clusters/); this is the backstop that two
 * operators working at once, or a hand-written UPDATE, cannot get past.
 */
export class Migration20261122000004ClusterInvariant extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create function fastify_tenancy_check_cluster(cluster uuid) returns void language plpgsql as $$
      declare
        parent uuid;
        members int;
        parent_is_member boolean;
      begin
        if cluster is null then return; end if;
        select parent_tenant_id into parent from tenant_clusters where id = cluster;
        if not found then return; end if;
        select count(*) into members from tenants where tenant_cluster_id = cluster;
        if members > 0 and parent is null then
          raise exception 'fastify_tenancy_cluster_rule: tenant cluster % has tenants but no parent tenant', cluster
            using errcode = '23514', hint = 'Make one of its tenants the parent tenant.';
        end if;
        if parent is not null then
          select exists (select 1 from tenants where key = parent and tenant_cluster_id = cluster) into parent_is_member;
          if not parent_is_member then
            raise exception 'fastify_tenancy_cluster_rule: the parent tenant of tenant cluster % is not one of its tenants', cluster
              using errcode = '23514', hint = 'The parent tenant must belong to the cluster.';
          end if;
        end if;
      end $$`)
    this.addSql(`
      create function fastify_tenancy_tenants_cluster_check() returns trigger language plpgsql as $$
      begin
        if tg_op in ('UPDATE', 'DELETE') then perform fastify_tenancy_check_cluster(old.tenant_cluster_id); end if;
        if tg_op in ('INSERT', 'UPDATE') then perform fastify_tenancy_check_cluster(new.tenant_cluster_id); end if;
        return null;
      end $$`)
    this.addSql(`
      create function fastify_tenancy_clusters_parent_check() returns trigger language plpgsql as $$
      begin
        perform fastify_tenancy_check_cluster(new.id);
        return null;
      end $$`)
    this.addSql(`create constraint trigger tenants_cluster_rule
      after insert or update of tenant_cluster_id or delete on tenants
      deferrable initially deferred for each row execute function fastify_tenancy_tenants_cluster_check()`)
    this.addSql(`create constraint trigger tenant_clusters_parent_rule
      after insert or update of parent_tenant_id on tenant_clusters
      deferrable initially deferred for each row execute function fastify_tenancy_clusters_parent_check()`)
  }

  override async down (): Promise<void> {
    this.addSql('drop trigger if exists tenants_cluster_rule on tenants')
    this.addSql('drop trigger if exists tenant_clusters_parent_rule on tenant_clusters')
    this.addSql('drop function if exists fastify_tenancy_tenants_cluster_check(), fastify_tenancy_clusters_parent_check(), fastify_tenancy_check_cluster(uuid)')
  }
}
