import type { Tenant } from '../tenant.js'
import type { TenantTarget } from '../database/tenant-target.js'
import type { DatabaseStrategy } from '../database/strategy.js'
import type { TenantScope } from '../context/tenant-scope.js'
import { DatabaseExistsError } from '../errors.js'
import type { TenancyEvents } from '../events/tenancy-events.js'

/** What the provisioning steps share while they make one tenant. */
export interface ProvisioningContext {
  tenant: Tenant
  target: TenantTarget
  strategy: DatabaseStrategy
  events: TenancyEvents
  /** Use a database that exists already instead of refusing. */
  adopt: boolean
  /** The tenant's rows were restored (an imported bundle): the seeder does not run. */
  restoring?: boolean
  /** This run made the database (so undoing may drop it; an adopted one is never dropped). */
  created: boolean
  /** The database came from the template, already at the newest migration. */
  fromTemplate: boolean
  /** Runs the tenant migrations (fastify-tenancy's, then the app's) on the tenant's database or schema; returns the names run. */
  migrate: () => Promise<string[]>
  /** Runs a function as the tenant (for seeders). */
  runAsTenant: (fn: (scope: TenantScope) => Promise<void>) => Promise<void>
  /** Closes the tenant's open pool (before a drop). */
  evictPool: () => Promise<void>
  /** Marks the tenant active. */
  activate: () => Promise<void>
}

/**
 * One single-purpose provisioning step. `undo` takes back what `run` made;
 * it is called for the failing step too, so it must cope with a half-done run.
 */
export interface ProvisioningStep {
  readonly name: string
  run: (context: ProvisioningContext) => Promise<void>
  undo?: (context: ProvisioningContext) => Promise<void>
}

/** Makes the tenant's database (or schema): cloned from the template when possible. */
export const createDatabaseStep: ProvisioningStep = {
  name: 'create-database',
  async run (ctx) {
    await ctx.events.emit({ name: 'database.creating', tenant: ctx.tenant })
    if (await ctx.strategy.exists(ctx.target)) {
      if (!ctx.adopt) throw new DatabaseExistsError(ctx.target.name, ctx.target.host)
    } else {
      const { fromTemplate } = await ctx.strategy.create(ctx.target)
      ctx.created = true
      ctx.fromTemplate = fromTemplate
    }
    await ctx.events.emit({ name: 'database.created', tenant: ctx.tenant })
  },
  async undo (ctx) {
    if (!ctx.created) return
    await ctx.evictPool()
    await ctx.strategy.drop(ctx.target)
    ctx.created = false
  }
}

/** Runs the tenant migrations (nothing to run when the database came from the template). */
export const migrateStep: ProvisioningStep = {
  name: 'migrate',
  async run (ctx) {
    await ctx.events.emit({ name: 'tenant.migrating', tenant: ctx.tenant })
    const ran = ctx.fromTemplate ? [] : await ctx.migrate()
    await ctx.events.emit({ name: 'tenant.migrated', tenant: ctx.tenant, migrations: ran })
  }
}

/** Runs the app's seeder, if it has one, inside the tenant's context. */
export function seedStep (seeder: ((scope: TenantScope) => Promise<void>) | null): ProvisioningStep {
  return {
    name: 'seed',
    async run (ctx) {
      if (seeder === null || ctx.restoring === true) return
      await ctx.events.emit({ name: 'tenant.seeding', tenant: ctx.tenant })
      await ctx.runAsTenant(seeder)
      await ctx.events.emit({ name: 'tenant.seeded', tenant: ctx.tenant })
    }
  }
}

/** Marks the tenant active: from now on it serves requests. */
export const activateStep: ProvisioningStep = {
  name: 'activate',
  run: async (ctx) => { await ctx.activate() }
}
