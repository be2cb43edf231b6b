import { InvalidOptionError } from '../../errors.js'

// The `shared` option itself (its fields, defaults and checks) is part of the
// options schema (server/options/schema.ts); this works out what follows from
// it and the central database's URL.

/** Strategy `shared`'s options once resolved, with the central role worked out. */
export interface ResolvedSharedOptions {
  url: string
  centralUrl: string
  /** The role of `centralUrl`: its policy lets it cross tenants. */
  centralRole: string
  schema: string
  poolSize: number
  deleteBatch: number
}

/** `shared` as the schema checked it, its defaults filled in. */
export type CheckedSharedOptions = Omit<ResolvedSharedOptions, 'centralUrl' | 'centralRole'> & { centralUrl?: string }

/** Fills in `shared.centralUrl` (the central URL pointed at the shared tables' database) and checks the two roles. */
export function resolveSharedOptions (shared: CheckedSharedOptions, centralUrl: string): ResolvedSharedOptions {
  const app = new URL(shared.url)
  let central: URL
  if (shared.centralUrl === undefined) {
    central = new URL(centralUrl)
    central.pathname = app.pathname
  } else {
    central = new URL(shared.centralUrl)
  }
  const role = decodeURIComponent(central.username)
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new InvalidOptionError('shared.centralUrl', 'must name its role (user) with lowercase letters, digits and underscores')
  if (decodeURIComponent(app.username) === role) throw new InvalidOptionError('shared.url', 'must connect as another role than the central one: the central role may cross tenants')
  return {
    url: app.toString(),
    centralUrl: central.toString(),
    centralRole: role,
    schema: shared.schema,
    poolSize: shared.poolSize,
    deleteBatch: shared.deleteBatch
  }
}
