import { Migration } from '@mikro-orm/migrations'
import { CENTRAL_COMPANIES_SQL } from '../../companies-tables.js'

/** The demo's central tables for synced companies: the central rows and their own pivot. */
export class Migration20261125020002CompaniesCentral extends Migration {
  override async up (): Promise<void> {
    for (const statement of CENTRAL_COMPANIES_SQL) this.addSql(statement)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists tenant_companies, companies')
  }
}
