import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ResolvedOptions, TenancyOptions } from '../options/index.js'
import { CliConfigError } from '../errors.js'
import { importDefault } from './modules.js'

/** Looked for in the working folder, in this order, when --config is not given. */
export const DEFAULT_CONFIG_FILES = ['tenancy.config.ts', 'tenancy.config.mjs', 'tenancy.config.js'] as const

/**
 * The app's tenancy options: the default export of `--config` (or of
 * tenancy.config.{ts,mjs,js} in the working folder), an object or a
 * function returning one; without a file, `{ database: { url: DATABASE_URL } }`.
 */
export async function loadOptions (configPath: string | undefined, cwd = process.cwd(), env = process.env): Promise<TenancyOptions> {
  const file = configPath ?? DEFAULT_CONFIG_FILES.find((f) => existsSync(resolve(cwd, f)))
  if (file !== undefined) return await optionsFromFile(file, cwd)
  const url = env.DATABASE_URL
  if (url === undefined || url.trim() === '') {
    throw new CliConfigError(`Set DATABASE_URL to the URL of the central database, or give --config <file> (or put ${DEFAULT_CONFIG_FILES.join(', ')} in the working folder) whose default export is the tenancy plugin options.`)
  }
  return { database: { url: url.trim() } }
}

async function optionsFromFile (file: string, cwd: string): Promise<TenancyOptions> {
  let value = await importDefault(file, 'config file', cwd)
  if (typeof value === 'function') {
    try {
      value = await (value as () => unknown)()
    } catch (error) {
      throw new CliConfigError(`The function exported by ${file} failed: ${(error as Error).message}`)
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliConfigError(`${file} must have the tenancy plugin options (or a function returning them) as its default export.`)
  }
  return value as TenancyOptions
}

/** The plugin options of `--config` (or the defaults), checked and filled in as the plugin does, without registering it (no database needed). */
export async function resolvedOptions (global: { config?: string }): Promise<ResolvedOptions> {
  const options = await loadOptions(global.config)
  const { resolveOptions } = await import('../options/index.js')
  try {
    return resolveOptions(options)
  } catch (error) {
    throw new CliConfigError(`The tenancy options are not usable: ${(error as Error).message}`)
  }
}

/** The central database URL of the options, or a usage error saying what is missing. */
export function centralUrl (options: TenancyOptions): string {
  const url = (options as { database?: { url?: unknown } }).database?.url
  if (typeof url !== 'string' || url.trim() === '') throw new CliConfigError('The tenancy options have no database.url (the URL of the central database).')
  return url
}
