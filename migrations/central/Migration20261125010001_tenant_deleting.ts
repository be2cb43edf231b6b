import { Migration } from '@mikro-orm/migrations'

/**
 * Status `deleting`: a delete marks the tenant first (so it is no longer
 * served), then drops its database, then removes its rows; a tenant left
 * `deleting` by a failure is finished by deleting it again.
 */
export class Migration20261125010001TenantDeleting extends Migration {
  override async up (): Promise<void> {
    this.addSql('alter table tenants drop constraint if exists tenants_status_check')
    this.addSql(`alter table tenants add constraint tenants_status_check
      check (status in ('provisioning', 'active', 'failed', 'suspended', 'deleting'))`)
  }

  override async down (): Promise<void> {
    this.addSql('alter table tenants drop constraint if exists tenants_status_check')
    this.addSql(`alter table tenants add constraint tenants_status_check
      check (status in ('provisioning', 'active', 'failed', 'suspended'))`)
  }
}
