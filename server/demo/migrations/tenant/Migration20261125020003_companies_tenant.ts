import { Migration } from '@mikro-orm/migrations'
import { TENANT_COMPANIES_SQL } from '../../companies-tables.js'

/** The demo's tenant table for synced companies. */
export class Migration20261125020003CompaniesTenant extends Migration {
  override async up (): Promise<void> {
    for (const statement of TENANT_COMPANIES_SQL) this.addSql(statement)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists companies')
  }
}
