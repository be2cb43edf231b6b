import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { InvalidBundleError } from '../errors.js'

/**
 * A tenant bundle (`acme.tenancy`): one tenant, portable between strategies,
 * hosts and installations. It is UTF-8 text, line by line:
 *
 *     fastify-tenancy bundle 1
 *     @manifest {"format":1,"tenant":{...},"domains":[...],"migrations":[...],...}
 *     @table {"name":"projects","columns":["id","title","created_at"]}
 *     <the table's rows in PostgreSQL's COPY text format, one per line>
 *     \.
 *     @table ...
 *     @end {"tables":3}
 *
 * COPY's text format escapes every backslash, so no row is ever the line
 * `\.` that ends a table. A bundle without its `@end` line was cut short and
 * is refused.
 */
export const BUNDLE_MAGIC = 'fastify-tenancy bundle'
export const BUNDLE_FORMAT = 1
const END_OF_TABLE = '\\.'

export interface BundleManifest {
  format: number
  exportedAt: string
  /** The strategy the tenant was exported from. */
  strategy: 'database' | 'schema' | 'shared'
  /** The tenant migrations its data was at. */
  migrations: string[]
  tenant: { key: string, identifier: string, resourceKey: string | null, name: string, status: string, data: Record<string, unknown> }
  domains: Array<{ domain: string, primary: boolean }>
  /** The last value of each sequence behind a column, by table (ids go on from there after an import). */
  sequences: Array<{ table: string, column: string, lastValue: string | null }>
  /** Synced resources attached to the tenant: their central rows, by resource name. */
  resources: Array<{ name: string, table: string, globalIdColumn: string, rows: Array<Record<string, unknown>> }>
}

export interface BundleTable {
  name: string
  columns: string[]
}

/** Writes a bundle to `out`, section by section, minding back-pressure. */
export class BundleWriter {
  private tables = 0
  constructor (private readonly out: Writable) {}

  async manifest (manifest: BundleManifest): Promise<void> {
    await this.write(`${BUNDLE_MAGIC} ${BUNDLE_FORMAT}\n@manifest ${JSON.stringify(manifest)}\n`)
  }

  /** One table: its header, then every chunk of `rows` (COPY text), then the end-of-table line. */
  async table (table: BundleTable, rows: Readable): Promise<void> {
    await this.write(`@table ${JSON.stringify(table)}\n`)
    for await (const chunk of rows) await this.write(chunk as Buffer)
    await this.write(`${END_OF_TABLE}\n`)
    this.tables++
  }

  async end (): Promise<void> {
    await this.write(`@end ${JSON.stringify({ tables: this.tables })}\n`)
  }

  private async write (data: string | Buffer): Promise<void> {
    if (!this.out.write(data)) await new Promise<void>((resolve, reject) => { this.out.once('drain', resolve); this.out.once('error', reject) })
  }
}

/**
 * Reads a bundle from `input`: the manifest first (checked), then each table
 * in turn; `onTable` gets each table's rows as a stream of COPY text lines
 * and must consume it before the next table is read.
 */
export async function readBundle (
  input: Readable, onManifest: (manifest: BundleManifest) => Promise<void>, onTable: (table: BundleTable, rows: AsyncIterable<string>) => Promise<void>
): Promise<{ tables: number }> {
  const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]()
  const next = async (): Promise<string | undefined> => { const r = await lines.next(); return r.done === true ? undefined : r.value }
  const magic = await next()
  if (magic === undefined || !magic.startsWith(BUNDLE_MAGIC + ' ')) throw new InvalidBundleError('it does not start with "fastify-tenancy bundle"')
  const format = Number(magic.slice(BUNDLE_MAGIC.length + 1))
  if (format !== BUNDLE_FORMAT) throw new InvalidBundleError(`it is in format ${String(format).slice(0, 10)}, and this version reads format ${BUNDLE_FORMAT}: import it with the version that made it, or a newer one`)
  const manifest = section(await next(), '@manifest') as BundleManifest
  if (typeof manifest?.tenant?.key !== 'string' || !Array.isArray(manifest.migrations)) throw new InvalidBundleError('its manifest lacks the tenant or its migrations')
  await onManifest(manifest)
  let tables = 0
  for (;;) {
    const line = await next()
    if (line === undefined) throw new InvalidBundleError('it ends before its "@end" line (cut short?)')
    if (line.startsWith('@end ')) {
      const end = section(line, '@end') as { tables?: number }
      if (end.tables !== tables) throw new InvalidBundleError(`it names ${String(end.tables)} tables at its end but holds ${tables}`)
      return { tables }
    }
    const table = section(line, '@table') as BundleTable
    let ended = false
    const rows = async function * (): AsyncGenerator<string> {
      for (;;) {
        const row = await next()
        if (row === undefined) throw new InvalidBundleError(`table ${table.name} ends before its end-of-table line`)
        if (row === END_OF_TABLE) { ended = true; return }
        yield row
      }
    }
    await onTable(table, rows())
    if (!ended) throw new InvalidBundleError(`table ${table.name} was not read to its end`)
    tables++
  }
}

function section (line: string | undefined, kind: string): unknown {
  if (line === undefined || !line.startsWith(kind + ' ')) throw new InvalidBundleError(`a "${kind}" line was expected${line === undefined ? ' and it ends' : ''}`)
  try {
    return JSON.parse(line.slice(kind.length + 1))
  } catch {
    throw new InvalidBundleError(`its "${kind}" line is not JSON`)
  }
}
