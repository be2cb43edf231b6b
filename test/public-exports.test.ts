import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/**
 * The names each public entry (`fastify-tenancy`, `/admin`, `/testing`)
 * exports, read from its source: `export { a, type B } from`, `export *
 * from` (followed), and declarations. Each name is a semver promise.
 */
function exportsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const names: string[] = []
  for (const m of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of (m[1] as string).split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()?.trim()
      if (name !== undefined && name !== '') names.push(name)
    }
  }
  for (const m of text.matchAll(/export\s+(?:declare\s+)?(?:abstract\s+)?(?:const|let|function|class|interface|type|enum)\s+(\w+)/g)) names.push(m[1] as string)
  for (const m of text.matchAll(/export\s+\*\s+from\s+'([^']+)'/g)) names.push(...exportsOf(join(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))))
  return [...new Set(names)].filter((n) => n !== 'default').sort()
}

/**
 * Exports no page documents yet, from before this test: each must be
 * documented (README.md or docs/) or made internal, and then leave this list.
 * It only shrinks; a new export must be documented from the start.
 */
const UNDOCUMENTED_BEFORE: Record<string, string[]> = {
  'server/index.ts': [],
  'server/admin/index.ts': [],
  'server/testing/index.ts': []
}

/** An error class is documented by its code in docs/errors.md (its class name is how an app catches it). */
const ERROR_CODES = new Map([...readFileSync('server/errors.ts', 'utf8').matchAll(/export const (\w+) = createError\(\s*'([A-Z_]+)'/g)].map((m) => [m[1] as string, m[2] as string]))

const docs = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => join('docs', f))]
  .map((f) => readFileSync(f, 'utf8')).join('\n')

test('the export lister finds every kind of export, and the internals are gone', () => {
  const names = exportsOf('server/index.ts')
  for (const name of ['tenancyPlugin', 'TenancyOptions', 'TenantScope', 'IdentifierTakenError']) assert.ok(names.includes(name), name)
  assert.ok(exportsOf('server/admin/index.ts').includes('adminPlugin'))
  assert.ok(exportsOf('server/testing/index.ts').includes('createTestTenant'))
  for (const internal of ['TenantConnections', 'TenantLease', 'CachedTenantProvider', 'TenantClusters', 'SyncManager', 'TenantContext']) assert.ok(!names.includes(internal), internal)
})

for (const entry of ['server/index.ts', 'server/admin/index.ts', 'server/testing/index.ts']) {
  test(`${entry} exports no new name the README or docs/ do not mention`, () => {
    const exported = exportsOf(entry)
    const documented = (name: string): boolean => new RegExp(`\\b${name}\\b`).test(docs) || (ERROR_CODES.has(name) && docs.includes(ERROR_CODES.get(name) as string))
    const before = new Set(UNDOCUMENTED_BEFORE[entry])
    assert.deepEqual(exported.filter((name) => !documented(name) && !before.has(name)), [], 'document the new export (README.md or docs/*.md) or keep it internal')
    assert.deepEqual([...before].filter((name) => documented(name) || !exported.includes(name)), [], 'documented or no longer exported: take it off UNDOCUMENTED_BEFORE')
  })
}
