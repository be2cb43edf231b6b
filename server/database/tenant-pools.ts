import type { FastifyBaseLogger } from 'fastify'
import type { EntitySchema } from '@mikro-orm/core'
import type { Tenant } from '../tenant.js'
import { PoolerResetError } from '../errors.js'
import { TenantConnections } from './tenant-connections.js'
import { schemaSetup, type TenantTarget } from './tenant-target.js'
import { DatabaseFaults } from './tenant-faults.js'
import { budgetFromSlots, clockOffsetMs, probeSessionState, serverSlots } from './server-facts.js'
import { TenantProofs } from './shared/tenant-proof.js'
import { SHARED_POOL_ID } from './shared/shared-strategy.js'
import type { StatementSetup } from './statement-client.js'

/** Connections this library keeps to the central database's server besides the central pool: the job queue (4), lifecycle locks (8), listeners (2). */
const OWN_HELPERS = 14

/** What the pools read of the plugin's options (its resolved options fit this shape). */
export interface PoolOptions {
  strategy: 'database' | 'schema' | 'shared'
  database: {
    url: string
    hosts: Record<string, string>
    instances: number
    poolCap?: number
    poolSize: number
    maxConnections?: number
    acquireTimeoutMs: number
    idleTimeoutMs: number
    pooler: 'none' | 'session' | 'transaction'
    debug: boolean
  }
  shared: { url: string, schema: string, poolSize: number } | null
}

export interface TenantPoolsParts {
  options: PoolOptions
  /** The tenant entities as the strategy maps them. */
  entities: EntitySchema<any, any>[]
  /** The tenant of the running context, and its scope (the request whose waits add up). */
  current: () => Tenant | null
  scope: () => object | null
  targetOf: (tenant: Tenant) => TenantTarget
  /** Connections of the central pool (on the central database's server). */
  centralPool: number
  log: FastifyBaseLogger
}

export interface TenantPools {
  connections: TenantConnections
  /**
   * Works out what needs the servers: the budgets and the pool cap not
   * given in the options, whether a pooler in front of a database tenants
   * share resets its connections (else refuses), and, in strategy `shared`,
   * the secret and the server's clock that proofs are signed with.
   */
  start: (sharedSecret: string | null) => Promise<void>
}

function serverOf (url: string): string {
  const u = new URL(url)
  return `${u.hostname}:${u.port === '' ? '5432' : u.port}`
}

/**
 * The pools of tenant connections as the options want them: per tenant
 * database, per host for schema tenants, or one for the shared tables whose
 * every statement carries its tenant's proof.
 */
export function tenantPools (parts: TenantPoolsParts): TenantPools {
  const { options, log } = parts
  const db = options.database
  const shared = options.shared
  const faults = new DatabaseFaults({ log, retryAfterSeconds: Math.ceil(db.acquireTimeoutMs / 1000) })
  let secret = ''
  let offsetMs = 0
  const proofs = shared === null ? null : new TenantProofs({ secret: () => secret, schema: shared.schema, now: () => Date.now() + offsetMs })
  let setup: (() => StatementSetup | null) | undefined
  if (proofs !== null) {
    setup = () => {
      const tenant = parts.current()
      if (tenant === null) return null
      // A tenant isolated into a schema of its own has it first on its statements' search path.
      return proofs.setup(tenant.key, tenant.isolation === 'schema' ? parts.targetOf(tenant).schema : null)
    }
  } else if (options.strategy === 'schema') {
    setup = () => {
      const tenant = parts.current()
      const schema = tenant === null ? null : parts.targetOf(tenant).schema
      return schema === null ? null : schemaSetup(schema)
    }
  }
  const connections = new TenantConnections({
    entities: parts.entities,
    cap: db.poolCap ?? 50,
    poolSize: shared === null ? db.poolSize : shared.poolSize,
    maxConnections: db.maxConnections ?? 20,
    acquireTimeoutMs: db.acquireTimeoutMs,
    idleTimeoutMs: db.idleTimeoutMs,
    debug: db.debug,
    ...(setup === undefined ? {} : { setup, reset: db.pooler !== 'transaction' }),
    running: () => parts.current()?.key ?? null,
    needsContext: shared !== null,
    waitOf: parts.scope,
    fault: (host, error) => faults.convert(host, error),
    reached: (host) => { faults.reached(host) },
    ...(shared === null
      ? {}
      : {
          // No search_path startup option (PgBouncer refuses it): each statement sets its own.
          // An isolated tenant's schema is its own (a schema) or named like the shared one (a database).
          ormOptions: (target: TenantTarget) => ({ clientUrl: target.url, schema: target.schema ?? shared.schema }),
          pinned: [SHARED_POOL_ID]
        })
  })

  return {
    connections,
    async start (sharedSecret) {
      // Databases tenants share: a pooler in front must not hand one client's session state to the next.
      const sharedUrls = shared !== null ? { shared: shared.url } : options.strategy === 'schema' ? db.hosts : {}
      for (const [name, url] of Object.entries(sharedUrls)) {
        const probe = await probeSessionState(url)
        if (probe.pooled && probe.survives !== false && db.pooler !== 'session') throw new PoolerResetError(name === 'shared' ? 'the shared tables\' database' : `database host "${name}"`)
      }
      if (shared !== null && proofs !== null) {
        secret = sharedSecret ?? ''
        offsetMs = await clockOffsetMs(shared.url)
      }
      const budgets: Record<string, number> = {}
      if (db.maxConnections === undefined) {
        const central = serverOf(db.url)
        for (const [name, url] of Object.entries(db.hosts)) {
          const own = serverOf(url) === central ? parts.centralPool + OWN_HELPERS : 0
          budgets[name] = budgetFromSlots(await serverSlots(url), own, db.instances)
          connections.setMaxConnections(name, budgets[name] as number)
        }
      } else {
        for (const name of Object.keys(db.hosts)) budgets[name] = db.maxConnections
      }
      const cap = db.poolCap ?? Object.values(budgets).reduce((sum, n) => sum + n, 0)
      connections.setCap(cap)
      const derived = { maxConnections: db.maxConnections === undefined, poolCap: db.poolCap === undefined }
      log.debug({ maxConnections: budgets, poolCap: cap, instances: db.instances, derived },
        'fastify-tenancy: tenant connection budget per database host, and pools kept open')
    }
  }
}
