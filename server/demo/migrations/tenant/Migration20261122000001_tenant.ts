import { Migration } from '@mikro-orm/migrations'

/** The demo's tenant tables: its copies of synced users (the users resource's tenant side), and its projects. */
export class Migration20261122000001Tenant extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create table users (
        id serial primary key,
        global_id varchar(64) not null unique,
        name varchar(255) not null,
        email varchar(255) not null unique,
        password varchar(255) not null,
        role varchar(63) not null default 'member',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`)
    this.addSql(`
      create table projects (
        id serial primary key,
        title varchar(255) not null,
        created_at timestamptz not null default now()
      )`)
  }

  override async down (): Promise<void> {
    this.addSql('drop table if exists projects, users')
  }
}
