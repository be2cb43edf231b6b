import type { Command } from 'commander'
import type { GlobalOptions } from '../app.js'
import { loadOptions } from '../config.js'
import { EXIT } from '../errors.js'
import { CliConfigError, CliUsageError } from '../../errors.js'
import { printJson } from '../output.js'

/**
 * tenants:rls [--check]: strategy `shared`'s row-level security. Without
 * --check it creates what is missing (tenant key column, forced RLS,
 * policies), makes every key of the tenant tables per tenant (primary keys,
 * uniques, unique indexes, foreign keys), grants the app role its rights and,
 * when the central role is a superuser, takes from it what no grant can; as
 * the central role. With --check it changes nothing and reports what the
 * plugin would refuse at register (tables without a policy, keys that hold
 * across tenants, rights the app role must not have) and foreign keys left
 * NOT VALID, exiting 1 when there is any; what only a superuser can still do
 * for the app role is reported without changing the exit code. It does not
 * register the plugin.
 */
export function registerRlsCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:rls')
    .description('strategy shared: create missing row-level security and make keys per tenant; --check only reports')
    .option('--check', 'change nothing; report what the plugin would refuse and exit 1 when there is any')
    .option('--json', 'print JSON')
    .action(async (flags: { check?: boolean, json?: boolean }) => {
      const [{ resolveOptions }, { applyRls }, { checkRls }, { missingEntityTables }] = await Promise.all([
        import('../../options/index.js'), import('../../database/shared/rls-policies.js'), import('../../database/shared/rls-guard.js'), import('../../database/shared/shared-schema.js')
      ])
      const options = await loadOptions(global().config)
      let shared
      let entities
      try {
        const resolved = resolveOptions(options)
        shared = resolved.shared
        entities = resolved.tenantEntities
      } catch (error) {
        throw new CliConfigError(`The tenancy options are not usable: ${(error as Error).message}`)
      }
      if (shared === null) throw new CliUsageError('tenants:rls is for strategy "shared"; the options use another strategy.')
      const out = (line: string): void => { process.stdout.write(line + '\n') }
      if (flags.check === true) {
        const check = await checkRls(shared)
        // A tenant entity whose table is not there yet (its migration not run) is not covered either.
        check.missing.push(...await missingEntityTables(shared.centralUrl, shared.schema, entities))
        const failed = check.missing.length + check.globalKeys.length + check.unvalidated.length + check.unsafeRole.length > 0
        if (flags.json === true) {
          printJson(check)
        } else {
          if (check.missing.length > 0) out(`Tenant tables in schema ${shared.schema} not made yet (run fastify-tenancy tenants:migrate) or without a row-level security policy: ${check.missing.join(', ')}.`)
          if (check.globalKeys.length > 0) out(`Keys in schema ${shared.schema} that hold across tenants (tenants:rls makes them per tenant): ${check.globalKeys.join('; ')}.`)
          if (check.unvalidated.length > 0) out(`Foreign keys left NOT VALID because rows made before point at another tenant's rows (fix those rows, then run tenants:rls again): ${check.unvalidated.join(', ')}.`)
          if (check.unsafeRole.length > 0) out(`The app role could reach past row-level security: ${check.unsafeRole.join('; ')}.`)
          if (!failed) out(`Every tenant table in schema ${shared.schema} has its policy and per-tenant keys, and the app role is held by them.`)
          for (const gap of check.hardening) out(`Left to a superuser: ${gap}.`)
        }
        if (failed) process.exitCode = EXIT.failed
        return
      }
      const appRole = decodeURIComponent(new URL(shared.url).username)
      const applied = await applyRls({ url: shared.centralUrl, schema: shared.schema, centralRole: shared.centralRole, appRole })
      if (flags.json === true) {
        printJson({ schema: shared.schema, ...applied })
        return
      }
      if (applied.changed.length === 0) out(`Every tenant table in schema ${shared.schema} had its policy and per-tenant keys already.`)
      else out(`Created row-level security or per-tenant keys on ${applied.changed.join(', ')} (schema ${shared.schema}).`)
      if (applied.unvalidated.length > 0) out(`Foreign keys left NOT VALID because rows made before point at another tenant's rows: ${applied.unvalidated.map((f) => `${f.table}.${f.name}`).join(', ')}. Fix those rows, then run tenants:rls again.`)
    })
}
