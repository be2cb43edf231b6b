import type { Command } from 'commander'
import { v7 as uuidv7 } from 'uuid'
import { generatePassword, hashPassword } from '../../admin/auth/password.js'
import { EMAIL } from '../../admin/ui/forms.js'
import { withCentralOrm, type GlobalOptions } from '../app.js'
import { AdminExistsError, AdminNotFoundError, CliUsageError, RoleNotFoundError } from '../../errors.js'
import { printJson } from '../output.js'
import { centralTables } from '../../database/central-schema.js'
import { AdminAccounts, PASSWORD_MAX, PASSWORD_MIN } from '../../admin/admins/admin-accounts.js'

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
      if (flags.password !== undefined && (flags.password.length < PASSWORD_MIN || flags.password.length > PASSWORD_MAX)) {
        throw new CliUsageError(`The password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters; leave --password out to generate one.`)
      }
      await withCentralOrm(global(), async (orm) => {
        const conn = orm.em.getConnection()
        const t = centralTables(orm)
        const taken = async (): Promise<boolean> => (await conn.execute(`select 1 from ${t.admins} where email = ?`, [email], 'all')).length > 0
        const refuse = (): Error => new AdminExistsError(email)
        if (await taken()) throw refuse()
        const role = (await conn.execute(`select id from ${t.admin_roles} where name = ?`, [flags.role], 'all'))[0] as { id: number } | undefined
        if (role === undefined) throw new RoleNotFoundError(flags.role)
        const password = flags.password ?? generatePassword()
        const id = uuidv7()
        try {
          await conn.transactional(async (trx) => {
            await conn.execute(`insert into ${t.admins} (id, email, name, password_hash) values (?, ?, ?, ?)`, [id, email, name, await hashPassword(password)], 'run', trx)
            await conn.execute(`insert into ${t.admin_role_assignments} (admin_id, role_id) values (?, ?)`, [id, role.id], 'run', trx)
          })
        } catch (error) {
          // Another admin:create (or the panel) took the email between the check and the insert.
          if ((error as { code?: string }).code === '23505' && await taken()) throw refuse()
          throw error
        }
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
      if (flags.password !== undefined && (flags.password.length < PASSWORD_MIN || flags.password.length > PASSWORD_MAX)) {
        throw new CliUsageError(`The password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters; leave --password out to generate one.`)
      }
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
