import { createInterface } from 'node:readline/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { v7 as uuidv7 } from 'uuid'
import { tenancyPlugin } from '../plugin.js'
import type { TenancyOptions } from '../options.js'
import type { TenantScope } from '../context/tenant-scope.js'
import { createCentralOrm, migrateCentral } from '../database/central.js'
import { mapLimit } from '../lifecycle/each-tenant.js'
import type { TenantResult } from '../lifecycle/tenant-migrations.js'
import { generatePassword, hashPassword } from '../admin/password.js'
import { loadOptions } from './config.js'
import { CliError } from './errors.js'
import { printTable, progressReporter, summarize } from './output.js'

interface Global { config?: string, verbose?: boolean }
interface FanOut { tenants?: string[], skipTenants?: string[], concurrency: number, json?: boolean }

const list = (value: string): string[] => value.split(',').map((v) => v.trim()).filter((v) => v.length > 0)
function positive (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('it must be a whole number from 1 to 256.')
  return n
}

/** Builds the app the way the user's server would: the plugin with their options, nothing listening. */
async function withApp<T> (global: Global, fn: (app: FastifyInstance, options: TenancyOptions) => Promise<T>): Promise<T> {
  const options = await loadOptions(global.config)
  const app = Fastify({ logger: false })
  await app.register(tenancyPlugin, { ...options, cache: options.cache === false ? false : { ...options.cache, listen: false } })
  await app.ready()
  try {
    return await fn(app, options)
  } finally {
    await app.close()
  }
}

function fanOutOptions (command: Command): Command {
  return command
    .option('--tenants <list>', 'only these tenants (identifiers or keys, comma-separated)', list)
    .option('--skip-tenants <list>', 'leave these tenants out', list)
    .option('--concurrency <n>', 'tenants at once', positive, 4)
    .option('--json', 'print the results as JSON')
}

async function fanOut (global: Global, opts: FanOut, label: string, run: (app: FastifyInstance, onResult: (r: TenantResult) => void) => Promise<TenantResult[]>): Promise<number> {
  return await withApp(global, async (app) => {
    const chosen = await app.tenancy.select(opts.tenants, opts.skipTenants)
    const progress = progressReporter(chosen.length, label, opts.json === true)
    let results: TenantResult[]
    try {
      results = await run(app, progress.onResult)
    } finally {
      progress.stop()
    }
    return summarize(results, opts.json === true, label)
  })
}

export function buildProgram (): Command {
  const program = new Command('fastify-tenancy')
    .description('Manage the tenants of a fastify-tenancy app.')
    .option('-c, --config <file>', 'module exporting the tenancy plugin options (default: tenancy.config.ts, .mjs or .js; else DATABASE_URL)')
    .option('--verbose', 'print stack traces of errors')
    .showHelpAfterError()
    // Usage mistakes throw instead of exiting, here and in every subcommand, so main() can exit 2.
    .exitOverride()
  const global = (): Global => program.opts<Global>()

  program.command('tenants:list').description('list the tenants').option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
    process.exitCode = await withApp(global(), async (app) => {
      const tenants = await app.tenancy.select()
      const rows = await app.tenancy.orm.em.getConnection().execute('select tenant_key, string_agg(domain, \' \' order by is_primary desc, domain) as domains from domains group by tenant_key', [], 'all')
      const domains = new Map(rows.map((r) => [String(r.tenant_key), String(r.domains)]))
      const out = tenants.map((t) => ({ key: t.key, identifier: t.identifier, name: t.name, status: t.status, host: t.databaseHost ?? '', domains: domains.get(t.key) ?? '' }))
      if (opts.json === true) console.log(JSON.stringify(out))
      else if (out.length === 0) console.log('No tenants.')
      else printTable(out, ['identifier', 'name', 'status', 'host', 'domains', 'key'])
      return 0
    })
  })

  program.command('tenants:create').description('create a tenant with its own database').argument('<identifier>')
    .option('--name <name>', 'display name').option('--domain <domain...>', 'domains (repeatable)').option('--host <host>', 'database host').option('--json', 'print JSON')
    .action(async (identifier: string, opts: { name?: string, domain?: string[], host?: string, json?: boolean }) => {
      process.exitCode = await withApp(global(), async (app) => {
        const tenant = await app.tenancy.create({ identifier, name: opts.name, domains: opts.domain, databaseHost: opts.host })
        if (opts.json === true) console.log(JSON.stringify({ key: tenant.key, identifier: tenant.identifier, status: tenant.status, host: tenant.databaseHost }))
        else console.log(`Created tenant ${tenant.identifier} (${tenant.key}) with database ${app.tenancy.databaseName(tenant)}.`)
        return 0
      })
    })

  program.command('tenants:delete').description('delete tenants with their databases').argument('<tenants...>', 'identifiers or keys')
    .option('--force', 'do not ask for confirmation').option('--json', 'print JSON')
    .action(async (names: string[], opts: { force?: boolean, json?: boolean }) => {
      process.exitCode = await withApp(global(), async (app) => {
        const tenants = await app.tenancy.select(names)
        if (opts.force !== true) {
          if (process.stdin.isTTY !== true) throw new CliError('Deleting drops tenant databases: pass --force to confirm when not on a terminal.')
          const rl = createInterface({ input: process.stdin, output: process.stdout })
          try {
            for (const t of tenants) {
              const answer = await rl.question(`Type "${t.identifier}" to delete it and its database: `)
              if (answer.trim() !== t.identifier) throw new CliError(`Not confirmed; ${t.identifier} was kept.`)
            }
          } finally {
            rl.close()
          }
        }
        for (const t of tenants) {
          await app.tenancy.delete(t)
          if (opts.json !== true) console.log(`Deleted ${t.identifier}.`)
        }
        if (opts.json === true) console.log(JSON.stringify(tenants.map((t) => ({ key: t.key, identifier: t.identifier, deleted: true }))))
        return 0
      })
    })

  for (const [name, label, description] of [['tenants:migrate', 'Migrate', 'run pending tenant migrations'], ['tenants:rollback', 'Roll back', 'roll back the newest tenant migration'], ['tenants:seed', 'Seed', 'run the provisioning seeder in each tenant']] as const) {
    fanOutOptions(program.command(name).description(description)).action(async (opts: FanOut) => {
      process.exitCode = await fanOut(global(), opts, label, async (app, onResult) => {
        const args = { tenants: opts.tenants, skipTenants: opts.skipTenants, concurrency: opts.concurrency, onResult }
        return name === 'tenants:migrate' ? await app.tenancy.migrate(args) : name === 'tenants:rollback' ? await app.tenancy.rollback(args) : await app.tenancy.seed(args)
      })
    })
  }

  fanOutOptions(program.command('tenants:run').description('run a module\'s default export once in each tenant\'s context').argument('<module>'))
    .action(async (modulePath: string, opts: FanOut) => {
      const mod = await import(pathToFileURL(resolve(modulePath)).href).catch(() => { throw new CliError(`Cannot load the module ${modulePath}.`, 2) }) as { default?: unknown }
      if (typeof mod.default !== 'function') throw new CliError(`${modulePath} must export a function as its default export: (scope) => …`, 2)
      const fn = mod.default as (scope: TenantScope) => unknown
      process.exitCode = await fanOut(global(), opts, 'Run', async (app, onResult) => {
        const tenants = (await app.tenancy.select(opts.tenants, opts.skipTenants)).filter((t) => opts.tenants !== undefined || t.status === 'active' || t.status === 'suspended')
        return await mapLimit(tenants, opts.concurrency, async (tenant) => {
          const started = performance.now()
          let result: TenantResult
          try {
            await app.tenancy.run(tenant, async (scope) => { await fn(scope) })
            result = { key: tenant.key, identifier: tenant.identifier, ok: true, migrations: [], ms: performance.now() - started }
          } catch (error) {
            result = { key: tenant.key, identifier: tenant.identifier, ok: false, migrations: [], error: (error as Error).message, ms: performance.now() - started }
          }
          onResult(result)
          return result
        })
      })
    })

  program.command('central:migrate').description('run the central (landlord) migrations').option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
    const options = await loadOptions(global().config)
    const orm = createCentralOrm({ url: options.database.url })
    try {
      const ran = await migrateCentral(orm)
      if (opts.json === true) console.log(JSON.stringify({ migrations: ran }))
      else console.log(ran.length === 0 ? 'The central database is up to date.' : `Ran ${ran.length} central migration(s): ${ran.join(', ')}.`)
    } finally {
      await orm.close(true)
    }
  })

  program.command('admin:create').description('create an admin of the landlord panel with the owner role')
    .requiredOption('--email <email>').option('--name <name>', 'display name').option('--password <password>', 'password (generated when omitted)').option('--role <role>', 'role name', 'owner')
    .action(async (opts: { email: string, name?: string, password?: string, role: string }) => {
      const email = opts.email.trim().toLowerCase()
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || email.length > 255) throw new CliError(`"${opts.email}" is not an email address.`, 2)
      if (opts.password !== undefined && opts.password.length < 12) throw new CliError('The password must be at least 12 characters.', 2)
      const options = await loadOptions(global().config)
      const orm = createCentralOrm({ url: options.database.url })
      try {
        const conn = orm.em.getConnection()
        if ((await conn.execute('select 1 from admins where email = ?', [email], 'all')).length > 0) throw new CliError(`An admin with the email ${email} exists already.`)
        const role = await conn.execute('select id from admin_roles where name = ?', [opts.role], 'all')
        if (role.length === 0) throw new CliError(`There is no role named "${opts.role}".`)
        const password = opts.password ?? generatePassword()
        const id = uuidv7()
        await conn.transactional(async (trx) => {
          await conn.execute('insert into admins (id, email, name, password_hash) values (?, ?, ?, ?)', [id, email, opts.name ?? email, await hashPassword(password)], 'run', trx)
          await conn.execute('insert into admin_role_assignments (admin_id, role_id) values (?, ?)', [id, role[0]?.id], 'run', trx)
        })
        console.log(`Created admin ${email} with the ${opts.role} role.${opts.password === undefined ? ` Password: ${password}` : ''}`)
      } finally {
        await orm.close(true)
      }
    })

  return program
}

async function main (): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(process.argv)
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version print and end well; a usage mistake is exit 2.
      process.exitCode = error.exitCode === 0 ? 0 : 2
      return
    }
    const e = error as Error & { exitCode?: number, code?: string }
    console.error(e.message)
    if (program.opts<Global>().verbose === true) console.error(e.stack)
    process.exitCode = e.exitCode ?? 1
  }
}

await main()
