import { InvalidOptionError } from '../../errors.js'

/** Options of strategy `shared` (`shared: { ... }` in the plugin options). */
export interface SharedOptions {
  /**
   * URL the tenant EntityManagers connect with: the database holding the
   * shared tables, as a role that owns no tenant table and has neither
   * BYPASSRLS nor superuser (the plugin refuses to register otherwise).
   */
  url: string
  /**
   * URL of the role that may cross tenants (central and admin work:
   * migrations, policies, deleting a tenant's rows). Default: the central
   * database's URL pointed at the shared tables' database.
   */
  centralUrl?: string
  /** Schema of the shared tenant tables (default `tenant_shared`; the central tables stay apart). */
  schema?: string
  /** Most connections of the one shared pool (default 10). */
  poolSize?: number
  /** Rows removed per statement when a tenant is deleted (default 1,000). */
  deleteBatch?: number
}

export interface ResolvedSharedOptions {
  url: string
  centralUrl: string
  /** The role of `centralUrl`: its policy lets it cross tenants. */
  centralRole: string
  schema: string
  poolSize: number
  deleteBatch: number
}

function fail (option: string, problem: string): never {
  throw new InvalidOptionError(option, problem)
}

function pgUrl (value: unknown, option: string): URL {
  if (typeof value !== 'string') fail(option, 'must be a postgres:// URL')
  let url: URL
  try { url = new URL(value) } catch { fail(option, 'must be a postgres:// URL') }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') fail(option, 'must be a postgres:// URL')
  return url
}

/** Checks `shared` (required by strategy `shared`) and fills in its defaults. */
export function resolveSharedOptions (input: unknown, centralUrl: string): ResolvedSharedOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('shared', 'is required by strategy "shared": give at least { url } (the app role\'s URL of the shared tables\' database)')
  const o = input as Partial<SharedOptions>
  const app = pgUrl(o.url, 'shared.url')
  let central: URL
  if (o.centralUrl === undefined) {
    central = new URL(centralUrl)
    central.pathname = app.pathname
  } else {
    central = pgUrl(o.centralUrl, 'shared.centralUrl')
  }
  const schema = o.schema ?? 'tenant_shared'
  if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) fail('shared.schema', 'must be a lowercase schema name')
  const role = decodeURIComponent(central.username)
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) fail('shared.centralUrl', 'must name its role (user) with lowercase letters, digits and underscores')
  if (decodeURIComponent(app.username) === role) fail('shared.url', 'must connect as another role than the central one: the central role may cross tenants')
  const whole = (v: unknown, option: string, fallback: number): number => {
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(option, 'must be a whole number of at least 1')
    return v
  }
  return {
    url: app.toString(),
    centralUrl: central.toString(),
    centralRole: role,
    schema,
    poolSize: whole(o.poolSize, 'shared.poolSize', 10),
    deleteBatch: whole(o.deleteBatch, 'shared.deleteBatch', 1000)
  }
}
