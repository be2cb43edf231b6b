import type { Command } from 'commander'
import { generatePassword } from '../../admin/auth/password.js'
import { EMAIL } from '../../admin/ui/forms.js'
import { withCentralOrm, type GlobalOptions } from '../app.js'
import { AdminNotFoundError, CliUsageError } from '../../errors.js'
import { printJson } from '../output.js'
import { AdminAccounts, PASSWORD_MIN, passwordProblem } from '../../admin/admins/admin-accounts.js'

interface AdminFlags { email: string, name: string, password?: string, role: string, json?: boolean }
interface ResetFlags { email: string, password?: string, json?: boolean }

/**
 * admin:create: an admin of the landlord panel, with the owner role (all
 * permissions) unless told another. admin:reset-password: a new password for
 * an admin locked out (a generated one printed once), ending their sessions.
 */
export function registerAdminCommands (program: Command, global: () => GlobalOptions): void {
  program.command('admin:create')
    .description('create an admin of the landlord panel, with the owner role')
    .requiredOption('--email <email>', 'sign-in email (stored lowercase)')
    .requiredOption('--name <name>', 'display name')
    .option('--password <password>', `at least ${PASSWORD_MIN} characters (default: a generated one, printed once)`)
    .option('--role <role>', 'role name', 'owner')
    .option('--json', 'print the admin as JSON')
    .action(async (flags: AdminFlags) => {
      const email = flags.email.trim().toLowerCase()
      const name = flags.name.trim()
      if (email.length > 255 || !EMAIL.test(email)) throw new CliUsageError(`"${flags.email.slice(0, 100)}" is not an email address.`)
      if (name.length === 0 || name.length > 255) throw new CliUsageError('--name must be 1 to 255 characters.')
      const problem = flags.password === undefined ? null : passwordProblem(flags.password, 'leave --password out')
      if (problem !== null) throw new CliUsageError(problem)
      await withCentralOrm(global(), async (orm) => {
        const password = flags.password ?? generatePassword()
        const id = await new AdminAccounts(orm).create({ email, name, password, roleName: flags.role })
        const generated = flags.password === undefined
        if (flags.json === true) printJson({ id, email, name, role: flags.role, ...(generated ? { password } : {}) })
        else process.stdout.write(`Created admin ${email} with the ${flags.role} role.${generated ? ` Password (shown only this once): ${password}` : ''}\n`)
      })
    })

  program.command('admin:reset-password')
    .description('give an admin of the landlord panel a new password and end their sessions')
    .requiredOption('--email <email>', 'the admin\'s sign-in email')
    .option('--password <password>', `at least ${PASSWORD_MIN} characters (default: a generated one, printed once)`)
    .option('--json', 'print the result as JSON')
    .action(async (flags: ResetFlags) => {
      const email = flags.email.trim().toLowerCase()
      if (email.length > 255 || !EMAIL.test(email)) throw new CliUsageError(`"${flags.email.slice(0, 100)}" is not an email address.`)
      const problem = flags.password === undefined ? null : passwordProblem(flags.password, 'leave --password out')
      if (problem !== null) throw new CliUsageError(problem)
      await withCentralOrm(global(), async (orm) => {
        const accounts = new AdminAccounts(orm)
        const admin = await accounts.findByEmail(email)
        if (admin === null) throw new AdminNotFoundError(email)
        const password = flags.password ?? generatePassword()
        await accounts.setPassword(admin.id, password)
        const generated = flags.password === undefined
        const note = admin.active ? '' : ' The account is deactivated: an admin with manage_admins must activate it before it can sign in.'
        if (flags.json === true) printJson({ id: admin.id, email: admin.email, active: admin.active, sessionsEnded: true, ...(generated ? { password } : {}) })
        else process.stdout.write(`New password set for ${admin.email}; their sessions have ended.${generated ? ` Password (shown only this once): ${password}` : ''}${note}\n`)
      })
    })
}
