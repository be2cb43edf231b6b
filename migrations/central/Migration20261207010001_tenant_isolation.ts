import { Migration } from '@mikro-orm/migrations'

/**
 * Where a tenant's rows live when it is not where the strategy puts every
 * tenant: `tenants.isolation` is `database` or `schema` for a tenant of
 * strategy `shared` isolated into a database or a schema of its own
 * (`tenants:isolate`), null otherwise.
 * A move records the isolation it leaves and the one it goes to, so a move
 * cut short finishes or is undone between the same two places.
 */
export class Migration20261207010001TenantIsolation extends Migration {
  override async up (): Promise<void> {
    this.addSql('alter table tenants add column isolation varchar(20) check (isolation in (\'database\', \'schema\'))')
    this.addSql('alter table tenant_moves add column from_isolation varchar(20) check (from_isolation in (\'database\', \'schema\')), add column to_isolation varchar(20) check (to_isolation in (\'database\', \'schema\'))')
  }

  override async down (): Promise<void> {
    this.addSql('alter table tenant_moves drop column from_isolation, drop column to_isolation')
    this.addSql('alter table tenants drop column isolation')
  }
}
