import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { TenancyOptions } from '../options.js'
import { CliError } from './errors.js'

const DEFAULT_FILES = ['tenancy.config.ts', 'tenancy.config.mjs', 'tenancy.config.js']

/**
 * The app's tenancy options: the default export of `--config` (or of
 * tenancy.config.{ts,mjs,js} in the working folder), an object or a function
 * returning one; without a file, DATABASE_URL as the central database.
 */
export async function loadOptions (configPath: string | undefined): Promise<TenancyOptions> {
  const file = configPath ?? DEFAULT_FILES.find((f) => existsSync(f))
  if (file !== undefined) {
    const full = resolve(file)
    if (!existsSync(full)) throw new CliError(`The config file ${file} does not exist.`, 2)
    const mod = await import(pathToFileURL(full).href) as { default?: unknown }
    const value = typeof mod.default === 'function' ? await (mod.default as () => unknown)() : mod.default
    if (typeof value !== 'object' || value === null) throw new CliError(`${file} must export its tenancy options as the default export.`, 2)
    return value as TenancyOptions
  }
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') {
    throw new CliError('Set DATABASE_URL to the central database, or give --config <file> (default tenancy.config.ts) exporting the plugin options.', 2)
  }
  return { database: { url } }
}
