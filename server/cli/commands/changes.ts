import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import type { TenantChanges } from '../../events/tenancy-events.js'
import { withApp, type GlobalOptions } from '../app.js'
import { CliUsageError } from '../../errors.js'
import { printJson } from '../output.js'

/** One tenant by identifier or key; an unknown name is FST_TENANCY_TENANT_NOT_FOUND, as everywhere. */
async function one (app: FastifyInstance, name: string): Promise<Tenant> {
  const [tenant] = await app.tenancy.tenants.select([name])
  return tenant as Tenant
}

function report (json: boolean | undefined, value: unknown, text: string): void {
  if (json === true) printJson(value)
  else process.stdout.write(`${text}\n`)
}

/**
 * tenants:update, tenants:suspend, tenants:activate and domains:add / remove /
 * primary: the core's write APIs (same rules and events as the admin panel).
 */
export function registerChangeCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:update')
    .description('rename a tenant or change its name or cluster (all or nothing, by the rules of tenants:create)')
    .argument('<tenant>', 'identifier or key')
    .option('--identifier <identifier>', 'a new identifier (its subdomain and URLs change; the key stays)')
    .option('--name <name>', 'a new display name')
    .option('--cluster <id>', 'a tenant cluster id, or "none"')
    .option('--json', 'print the tenant as JSON')
    .action(async (name: string, flags: { identifier?: string, name?: string, cluster?: string, json?: boolean }) => {
      const changes: TenantChanges = {}
      if (flags.identifier !== undefined) changes.identifier = flags.identifier
      if (flags.name !== undefined) changes.name = flags.name
      if (flags.cluster !== undefined) changes.clusterId = flags.cluster === 'none' ? null : flags.cluster
      if (Object.keys(changes).length === 0) throw new CliUsageError('Give at least one of --identifier, --name or --cluster.')
      await withApp(global(), async (app) => {
        const tenant = await app.tenancy.update(await one(app, name), changes)
        report(flags.json, tenant, `Updated tenant ${tenant.identifier} (${tenant.key}).`)
      })
    })

  for (const [command, verb, done] of [['tenants:suspend', 'suspend', 'Suspended'], ['tenants:activate', 'activate', 'Activated']] as const) {
    program.command(command)
      .description(verb === 'suspend' ? 'suspend active tenants: their requests get 403' : 'activate suspended tenants again')
      .argument('<tenants...>', 'identifiers or keys')
      .option('--json', 'print the tenants as a JSON array')
      .action(async (names: string[], flags: { json?: boolean }) => {
        await withApp(global(), async (app) => {
          const changed: Tenant[] = []
          for (const tenant of await app.tenancy.tenants.select(names)) changed.push(await app.tenancy[verb](tenant))
          report(flags.json, changed, changed.map((t) => `${done} tenant ${t.identifier} (${t.key}).`).join('\n'))
        })
      })
  }

  program.command('domains:add')
    .description('add a domain to a tenant (its first domain is primary)')
    .argument('<tenant>', 'identifier or key')
    .argument('<domain>', 'a lowercase hostname, not central and not another tenant\'s')
    .option('--primary', 'make it the primary domain')
    .option('--json', 'print the tenant\'s domains as JSON')
    .action(async (name: string, domain: string, flags: { primary?: boolean, json?: boolean }) => {
      await withApp(global(), async (app) => {
        const tenant = await one(app, name)
        const added = await app.tenancy.domains.add(tenant, domain, { primary: flags.primary === true })
        report(flags.json, await app.tenancy.domains.list(tenant), `Added ${added.domain} to tenant ${tenant.identifier}${added.primary ? ' as its primary domain' : ''}.`)
      })
    })

  for (const [command, description, done] of [
    ['domains:remove', 'remove a domain from a tenant (when it was primary, the oldest remaining one becomes primary)', 'Removed'],
    ['domains:primary', 'make one of a tenant\'s domains its primary', 'Made primary:']
  ] as const) {
    program.command(command)
      .description(description)
      .argument('<tenant>', 'identifier or key')
      .argument('<domain>', 'one of the tenant\'s domains')
      .option('--json', 'print the tenant\'s domains as JSON')
      .action(async (name: string, domain: string, flags: { json?: boolean }) => {
        await withApp(global(), async (app) => {
          const tenant = await one(app, name)
          if (command === 'domains:remove') await app.tenancy.domains.remove(tenant, domain)
          else await app.tenancy.domains.makePrimary(tenant, domain)
          report(flags.json, await app.tenancy.domains.list(tenant), `${done} ${domain} (tenant ${tenant.identifier}).`)
        })
      })
  }
}
