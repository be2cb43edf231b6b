import { createInterface } from 'node:readline/promises'
import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { Tenant } from '../../tenant.js'
import { withApp, type GlobalOptions } from '../app.js'
import { collectList, names } from '../arguments.js'
import { EXIT, describeError } from '../errors.js'
import { NotConfirmedError, TenantNotFoundError } from '../../errors.js'
import { printJson, printTable } from '../output.js'

interface Listed {
  key: string
  identifier: string
  name: string
  status: string
  /** Its requests are held: a move's switch under way, or the former data a swap kept (it serves no one until deleted). */
  held: boolean
  host: string | null
  domains: string[]
  database: string
  created: string | null
  failureReason: string | null
}

/** The tenants with their domains (primary first), ordered by identifier. */
async function listTenants (app: FastifyInstance, only?: readonly string[]): Promise<Listed[]> {
  // select() keeps its rule (unknown names are an error); list() adds the domains and the row's times.
  const chosen = only === undefined ? undefined : (await app.tenancy.tenants.select(only)).map((t) => t.key)
  const { tenants } = await app.tenancy.tenants.list({ keys: chosen })
  return tenants.map((t) => ({
    key: t.key,
    identifier: t.identifier,
    name: t.name,
    status: t.status,
    held: t.heldAt != null,
    host: t.databaseHost ?? app.tenancy.tenants.target(t).host,
    domains: t.domains,
    database: app.tenancy.tenants.target(t).name,
    created: t.createdAt instanceof Date ? t.createdAt.toISOString() : null,
    failureReason: t.failureReason ?? null
  }))
}

/** Asks on the terminal to type each tenant's identifier; false at the first that does not match. */
async function confirmOnTerminal (tenants: readonly Tenant[]): Promise<boolean> {
  // The prompt goes to stderr so that stdout stays clean for --json.
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    for (const t of tenants) {
      const answer = await rl.question(`This drops the database of tenant ${t.identifier} (${t.key}) and removes it. Type its identifier to confirm: `)
      if (answer.trim() !== t.identifier) return false
    }
    return true
  } finally {
    rl.close()
  }
}

/** tenants:list, tenants:create and tenants:delete. */
export function registerTenantCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:list')
    .description('list the tenants: identifier, name, status, database host, domains, created')
    .option('--json', 'print a JSON array')
    .action(async (flags: { json?: boolean }) => {
      await withApp(global(), async (app) => {
        const tenants = await listTenants(app)
        if (flags.json === true) {
          printJson(tenants)
        } else if (tenants.length === 0) {
          process.stdout.write('No tenants.\n')
        } else {
          printTable(tenants.map((t) => ({
            identifier: t.identifier,
            name: t.name,
            status: t.held ? `${t.status}, held` : t.status,
            host: t.host ?? '',
            domains: t.domains.join(', '),
            created: t.created === null ? '' : t.created.slice(0, 16).replace('T', ' ')
          })), ['identifier', 'name', 'status', 'host', 'domains', 'created'])
        }
      })
    })

  program.command('tenants:create')
    .description('create a tenant with its own database at the newest tenant migration')
    .argument('<identifier>', 'lowercase letters, digits and dashes')
    .option('--name <name>', 'display name (default: the identifier)')
    .option('--domain <domain>', 'a domain of the tenant (repeat it, or separate with commas; the first is primary)', collectList)
    .option('--host <host>', 'database host, a name from the database.hosts option (default: the placement function picks)')
    .option('--json', 'print the new tenant as JSON')
    .action(async (identifier: string, flags: { name?: string, domain?: string[], host?: string, json?: boolean }) => {
      const domains = names('--domain', flags.domain)
      await withApp(global(), async (app) => {
        const created = await app.tenancy.create({ identifier, name: flags.name, domains, databaseHost: flags.host })
        const [tenant] = await listTenants(app, [created.key])
        if (tenant === undefined) throw new TenantNotFoundError(identifier)
        if (flags.json === true) { printJson(tenant); return }
        // In strategies schema and shared its tables are in a schema, not a database of its own.
        const holder = app.tenancy.tenants.target(created).schema === null ? 'database' : 'schema'
        process.stdout.write(`Created tenant ${tenant.identifier} (${tenant.key}), ${tenant.status}, ${holder} ${tenant.database} on host ${tenant.host ?? ''}${tenant.domains.length > 0 ? `, domains ${tenant.domains.join(', ')}` : ''}.\n`)
      })
    })

  program.command('tenants:delete')
    .description('delete tenants: their databases, domains and pivot rows, then the tenant rows')
    .argument('<tenants...>', 'identifiers or keys')
    .option('--force', 'do not ask for confirmation (needed when not on a terminal)')
    .option('--json', 'print the results as a JSON array')
    .action(async (wanted: string[], flags: { force?: boolean, json?: boolean }) => {
      await withApp(global(), async (app) => {
        const tenants = await app.tenancy.tenants.select(wanted)
        if (flags.force !== true) {
          if (process.stdin.isTTY !== true) throw new NotConfirmedError('tenants:delete drops tenant databases, and there is no terminal to confirm on: pass --force to delete without one.')
          if (!await confirmOnTerminal(tenants)) throw new NotConfirmedError('Run it again and type the identifier to delete the tenant.')
        }
        const results: Array<{ key: string, identifier: string, deleted: boolean, error?: string }> = []
        for (const t of tenants) {
          try {
            await app.tenancy.delete(t)
            results.push({ key: t.key, identifier: t.identifier, deleted: true })
            if (flags.json !== true) process.stdout.write(`Deleted tenant ${t.identifier} (${t.key}).\n`)
          } catch (error) {
            results.push({ key: t.key, identifier: t.identifier, deleted: false, error: describeError(error).message })
          }
        }
        if (flags.json === true) printJson(results)
        const failed = results.filter((r) => !r.deleted)
        if (failed.length > 0) {
          process.stderr.write(`${failed.length} tenant${failed.length === 1 ? '' : 's'} could not be deleted:\n${failed.map((r) => `  ${r.identifier} (${r.key}): ${r.error ?? ''}`).join('\n')}\n`)
          process.exitCode = EXIT.failed
        }
      })
    })
}
