import { Migration } from '@mikro-orm/migrations'
import { lockNamesByName } from './Migration20261125050002_rename_locks.js'

// LockSpace.names in server/database/advisory-locks.ts.
const NAMES = 0x46540005
const BUCKETS = 1024

/**
 * Name locks by bucket: each name (identifier or domain) maps to one of 1,024
 * advisory locks. A transaction that writes many names at once (a bulk import
 * of 100,000 tenants) holds at most 1,024 locks instead of one per row, which
 * ran PostgreSQL's lock table out of shared memory. Two names in one bucket
 * only take turns. A row takes its buckets in order, but a statement writing
 * several rows (a tenant and its domains) takes them row by row, so two such
 * statements can deadlock; PostgreSQL then rolls one back, and the plugin's
 * writes run again (retryingConflicts).
 */
export class Migration20261125060001NameLockBuckets extends Migration {
  override async up (): Promise<void> {
    this.addSql(`
      create or replace function fastify_tenancy_lock_names(kind text, a text, b text) returns void language plpgsql as $$
      declare
        bucket int;
      begin
        for bucket in select distinct abs(hashtext(kind || ':' || n) % ${BUCKETS}) from unnest(array[a, b]) as n where n is not null order by 1 loop
          perform pg_advisory_xact_lock(${NAMES}, bucket);
        end loop;
      end $$`)
  }

  override async down (): Promise<void> {
    this.addSql(`create or replace ${lockNamesByName}`)
  }
}
