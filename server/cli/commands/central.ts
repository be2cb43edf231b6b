import type { Command } from 'commander'
import { withCentralOrm, type GlobalOptions } from '../app.js'
import { printJson } from '../output.js'

/** central:migrate: brings the central (landlord) database to the newest central migration. */
export function registerCentralCommands (program: Command, global: () => GlobalOptions): void {
  program.command('central:migrate')
    .description('run the central (landlord) database migrations')
    .option('--json', 'print the migrations run as JSON')
    .action(async (flags: { json?: boolean }) => {
      await withCentralOrm(global(), async (orm) => {
        const { migrateCentral } = await import('../../database/central.js')
        const ran = await migrateCentral(orm)
        if (flags.json === true) printJson({ migrations: ran })
        else process.stdout.write(ran.length === 0 ? 'The central database is up to date.\n' : `Ran ${ran.length} central migration${ran.length === 1 ? '' : 's'}: ${ran.join(', ')}.\n`)
      })
    })
}
