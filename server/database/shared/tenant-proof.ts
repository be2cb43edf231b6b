import { createHmac } from 'node:crypto'
import { NoTenantContextError } from '../../errors.js'
import { UUID_PATTERN } from '../../tenant.js'
import { quoteIdent } from '../names.js'
import type { StatementSetup } from '../statement-client.js'
import { PROOF_LABEL, RLS_SCHEMA } from './rls-sql.js'

/**
 * What every statement on the shared pool runs first, in its transaction: the
 * tenant proof ($1) checked by `enter()`, and the search_path ($2: the shared
 * schema, then pg_temp explicitly last so no temporary table shadows a
 * shared one).
 */
export const PROOF_SQL = `select ${RLS_SCHEMA}.enter($1), pg_catalog.set_config('search_path', $2, true)`

/** How long a signed proof is good for, in seconds; a new one is signed once half of it has passed. */
const LIFETIME_SECONDS = 300
/** Tenants whose proofs are kept at once. */
const KEPT = 10_000

/** A bearer proof for tenant `key`, good until `expiresAt` (epoch seconds): `<key>.<expires>.<HMAC-SHA256 hex>` (see rls-sql.ts). */
export function signProof (secret: string, key: string, expiresAt: number): string {
  const head = `${key}.${String(Math.floor(expiresAt)).padStart(10, '0')}`
  return `${head}.${createHmac('sha256', Buffer.from(secret, 'hex')).update(PROOF_LABEL + head).digest('hex')}`
}

export interface TenantProofsOptions {
  /** The shared database's secret (read at start). */
  secret: () => string
  /** The shared schema, first on each statement's search_path. */
  schema: string
  /** Milliseconds since the epoch on the database server's clock (proofs expire by it). */
  now: () => number
}

/**
 * Signs the tenant proofs of the shared pool's statements, one per tenant,
 * again once half of its lifetime has passed. A proof is a bind parameter of
 * each statement's setup (statement-client.ts), never part of SQL text.
 */
export class TenantProofs {
  private readonly options: TenantProofsOptions
  private readonly searchPath: string
  private readonly made = new Map<string, { setup: StatementSetup, renewAt: number, schema: string | null }>()

  constructor (options: TenantProofsOptions) {
    this.options = options
    this.searchPath = `${quoteIdent(options.schema)}, pg_temp`
  }

  /** The setup of a statement of tenant `key`; `schema`: a schema of its own (an isolated tenant's) instead of the shared one. */
  setup (key: string, schema: string | null = null): StatementSetup {
    const now = this.options.now()
    const known = this.made.get(key)
    if (known !== undefined && now < known.renewAt && known.schema === schema) return known.setup
    // Only checked UUIDs are signed (current_tenant() casts what it proves without another check).
    if (!UUID_PATTERN.test(key)) throw new NoTenantContextError(`A statement for tenant "${key.slice(0, 40)}"`)
    const expiresAt = Math.floor(now / 1000) + LIFETIME_SECONDS
    const searchPath = schema === null ? this.searchPath : `${quoteIdent(schema)}, pg_temp`
    const setup: StatementSetup = { owner: key, text: PROOF_SQL, values: [signProof(this.options.secret(), key, expiresAt), searchPath] }
    if (this.made.size >= KEPT) this.made.clear()
    this.made.set(key, { setup, renewAt: now + LIFETIME_SECONDS * 500, schema })
    return setup
  }
}
