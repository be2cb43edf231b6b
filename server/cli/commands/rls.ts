import type { Command } from 'commander'
import type { GlobalOptions } from '../app.js'
import { loadOptions } from '../config.js'
import { EXIT } from '../errors.js'
import { CliConfigError, CliUsageError } from '../../errors.js'
import { printJson } from '../output.js'

/**
 * tenants:rls [--check]: strategy `shared`'s row-level security. Without
 * --check it creates what is missing (tenant key column, per-tenant uniques,
 * forced RLS, policies) on every table of the shared schema, as the central
 * role; with --check it changes nothing and lists the tables without a
 * policy, exiting 1 when there are any. It does not register the plugin
 * (which refuses to start while a table lacks its policy).
 */
export function registerRlsCommands (program: Command, global: () => GlobalOptions): void {
  program.command('tenants:rls')
    .description('strategy shared: create missing row-level security policies on the shared tables; --check only reports tables without one')
    .option('--check', 'change nothing; list tables without a policy and exit 1 when there are any')
    .option('--json', 'print JSON')
    .action(async (flags: { check?: boolean, json?: boolean }) => {
      const [{ resolveOptions }, { applyRls, unprotectedTables }, { missingEntityTables }] = await Promise.all([import('../../options/index.js'), import('../../database/shared/rls-policies.js'), import('../../database/shared/shared-schema.js')])
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
      if (flags.check === true) {
        // A tenant entity whose table is not there yet (its migration not run) is not covered either.
        const missing = [...await unprotectedTables(shared.centralUrl, shared.schema), ...await missingEntityTables(shared.centralUrl, shared.schema, entities)]
        if (flags.json === true) printJson({ schema: shared.schema, missing })
        else if (missing.length === 0) process.stdout.write(`Every tenant table in schema ${shared.schema} has its policy.\n`)
        else process.stdout.write(`Tables in schema ${shared.schema} without a row-level security policy: ${missing.join(', ')}.\n`)
        if (missing.length > 0) process.exitCode = EXIT.failed
        return
      }
      const appRole = decodeURIComponent(new URL(shared.url).username)
      const changed = await applyRls({ url: shared.centralUrl, schema: shared.schema, centralRole: shared.centralRole, appRole })
      if (flags.json === true) printJson({ schema: shared.schema, changed })
      else if (changed.length === 0) process.stdout.write(`Every tenant table in schema ${shared.schema} had its policy already.\n`)
      else process.stdout.write(`Created row-level security on ${changed.join(', ')} (schema ${shared.schema}).\n`)
    })
}
