import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { FileNotFoundError, FileNotLoadableError } from '../errors.js'

/**
 * The default export of a user's module (a config file, a tenants:run task),
 * by path from the working folder. A .ts file in a folder that is not
 * "type": "module" is compiled to CommonJS by tsx, and then arrives wrapped
 * once more ({ __esModule, default }); it is unwrapped here.
 */
export async function importDefault (path: string, what: string, cwd = process.cwd()): Promise<unknown> {
  const full = resolve(cwd, path)
  if (!existsSync(full)) throw new FileNotFoundError(what, path)
  let mod: { default?: unknown }
  try {
    mod = await import(pathToFileURL(full).href) as { default?: unknown }
  } catch (error) {
    // An installed package runs on plain node, which cannot load TypeScript unless the app has tsx (an optional peer).
    const noLoader = (error as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(full)
    throw new FileNotLoadableError(what, path, noLoader ? 'Node cannot load TypeScript by itself; add tsx to your project (npm install --save-dev tsx), or write the file as .mjs' : (error as Error).message)
  }
  const value = mod.default
  if (typeof value === 'object' && value !== null && (value as { __esModule?: unknown }).__esModule === true && 'default' in value) {
    return (value as { default: unknown }).default
  }
  return value
}
