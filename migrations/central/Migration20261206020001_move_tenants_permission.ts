import { Migration } from '@mikro-orm/migrations'

/**
 * The `move_tenants` permission (moving a tenant between hosts, exporting
 * and importing a tenant's bundle): the owner role gets it, as it got every
 * permission before; other roles get it only when an admin grants it, since
 * an export carries all of a tenant's data.
 */
export class Migration20261206020001MoveTenantsPermission extends Migration {
  override async up (): Promise<void> {
    this.addSql(`update admin_roles set permissions = array_append(permissions, 'move_tenants')
      where name = 'owner' and not ('move_tenants' = any (permissions))`)
  }

  override async down (): Promise<void> {
    this.addSql('update admin_roles set permissions = array_remove(permissions, \'move_tenants\')')
  }
}
