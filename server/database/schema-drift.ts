import type { Tenant } from '../tenant.js'
import type { TargetOf } from './tenant-targets.js'
import type { TenantMigrator } from './tenant-migrator.js'
import { assertSafeName, databaseUrl, quoteIdent } from './names.js'
import { ensureTemplate } from './template.js'
import { withServer } from './tenant-database.js'
import { catalogChecksum, catalogDifferences, catalogLines } from './schema-catalog.js'
import { misuse } from '../misuse.js'

/** `matches`: the tenant's schema is the template's; `changed`: it is not (changed by hand); `behind`: it has pending migrations, so it cannot be the template's. */
export type DriftVerdict = 'matches' | 'changed' | 'behind'

/** How a tenant's actual schema compares with the template's. */
export interface SchemaDrift {
  verdict: DriftVerdict
  /** Checksum of the tenant's catalog (tables, columns and types, defaults, indexes, constraints). */
  checksum: string
  /** Checksum of the template's catalog at the newest tenant migrations. */
  expected: string
  /** What differs: `+ …` only in the tenant, `- …` only in the template (empty when it matches). */
  differences: string[]
}

export interface SchemaVerifierParts {
  kind: 'database' | 'schema' | 'shared'
  migrator: TenantMigrator
  targetOf: TargetOf
  /** The template's name: `<prefix>template`, a database (strategy `database`) or a schema in each host's database (strategy `schema`). */
  templateName: string
}

/**
 * Compares a tenant's actual schema with the template's, by a checksum of
 * their catalogs (schema-catalog.ts): the template database the plugin keeps
 * at the newest tenant migrations (strategy `database`), or a template schema
 * built the same way in the host's database (strategy `schema`). Strategy
 * `shared` has one set of tables for every tenant: nothing per tenant to verify.
 */
export class SchemaVerifier {
  private readonly parts: SchemaVerifierParts
  /** Template catalogs by host and migrations fingerprint: read once per process. */
  private readonly references = new Map<string, Promise<string[]>>()

  constructor (parts: SchemaVerifierParts) {
    this.parts = parts
  }

  async verify (tenant: Tenant, status: { pending: readonly string[] }): Promise<SchemaDrift> {
    if (this.parts.kind === 'shared') throw misuse.driftCheckInShared()
    const target = this.parts.targetOf(tenant)
    const [expectedLines, actual] = await Promise.all([
      this.reference(target.server, target.url),
      withServer(target.url, async (c) => await catalogLines(c, target.schema ?? 'public'))
    ])
    const checksum = catalogChecksum(actual)
    const expected = catalogChecksum(expectedLines)
    const differences = checksum === expected ? [] : catalogDifferences(expectedLines, actual)
    const verdict: DriftVerdict = status.pending.length > 0 ? 'behind' : checksum === expected ? 'matches' : 'changed'
    return { verdict, checksum, expected, differences }
  }

  private async reference (server: string, url: string): Promise<string[]> {
    const fingerprint = await this.parts.migrator.fingerprint()
    const id = `${this.parts.kind === 'database' ? server : url}#${fingerprint}`
    let lines = this.references.get(id)
    if (lines === undefined) {
      lines = (this.parts.kind === 'database' ? this.templateDatabase(server) : this.templateSchema(url, fingerprint))
      lines.catch(() => { this.references.delete(id) })
      this.references.set(id, lines)
    }
    return await lines
  }

  private async templateDatabase (server: string): Promise<string[]> {
    const name = assertSafeName(this.parts.templateName)
    await ensureTemplate(server, name, this.parts.migrator)
    return await withServer(databaseUrl(server, name), async (c) => await catalogLines(c, 'public'))
  }

  /** A schema built by the tenant migrations in the host's database, rebuilt when they change (its comment holds their fingerprint). */
  private async templateSchema (url: string, fingerprint: string): Promise<string[]> {
    const name = assertSafeName(this.parts.templateName)
    return await withServer(url, async (c) => {
      // Instances verifying at once build it one at a time.
      await c.query('select pg_advisory_lock(hashtext($1))', [`fastify-tenancy:${name}`])
      try {
        const have = await c.query('select obj_description(oid, \'pg_namespace\') as fingerprint from pg_namespace where nspname = $1', [name])
        if (have.rows[0]?.fingerprint !== fingerprint) {
          await c.query(`drop schema if exists ${quoteIdent(name)} cascade`)
          await c.query(`create schema ${quoteIdent(name)}`)
          await this.parts.migrator.up({ url, schema: name, name, server: url })
          await c.query(`comment on schema ${quoteIdent(name)} is '${fingerprint.replace(/'/g, '')}'`)
        }
        return await catalogLines(c, name)
      } finally {
        await c.query('select pg_advisory_unlock(hashtext($1))', [`fastify-tenancy:${name}`])
      }
    })
  }
}
