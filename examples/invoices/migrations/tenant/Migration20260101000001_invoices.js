import { Migration } from '@mikro-orm/migrations'

export class Migration20260101000001Invoices extends Migration {
  async up () {
    this.addSql(`create table "invoices" (
      "id" serial primary key,
      "number" varchar(255) not null,
      "customer" varchar(255) not null,
      "total_cents" int not null,
      "reminded_at" timestamptz null
    )`)
  }

  async down () {
    this.addSql('drop table "invoices"')
  }
}
