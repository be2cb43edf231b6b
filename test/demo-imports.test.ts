import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

// The demo is an app like any other: from the library it imports only what
// the package exports (package.json `exports`: these sources are what
// fastify-tenancy, fastify-tenancy/admin and fastify-tenancy/testing build to).
const ROOT = resolve(import.meta.dirname, '..')
const DEMO = join(ROOT, 'server', 'demo')
const ENTRIES = ['server/index.ts', 'server/admin/index.ts', 'server/testing/index.ts'].map((f) => join(ROOT, f))
const PACKAGE_NAMES = new Set(['fastify-tenancy', 'fastify-tenancy/admin', 'fastify-tenancy/testing'])

/** What each import of `source` (a file at `file`) names that an app could not: a module of the library other than its entries. */
function forbiddenImports (file: string, source: string): string[] {
  const { importedFiles } = ts.preProcessFile(source, true, true)
  return importedFiles.map((f) => f.fileName).filter((name) => {
    if (name.startsWith('.')) {
      const target = resolve(dirname(file), name.replace(/\.js$/, '.ts'))
      return !target.startsWith(DEMO + sep) && !ENTRIES.includes(target)
    }
    // A node built-in or an npm package; of ours, only the exported entries.
    return name.startsWith('fastify-tenancy') && !PACKAGE_NAMES.has(name)
  })
}

function demoFiles (dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(?:ts|mts|js|mjs)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f))
}

test('every file under server/demo imports the library only through its exported entries', () => {
  const files = demoFiles(DEMO)
  assert.ok(files.length > 10, 'the demo files are found')
  const found = files.flatMap((file) => forbiddenImports(file, readFileSync(file, 'utf8')).map((name) => `${relative(ROOT, file)}: ${name}`))
  assert.deepEqual(found, [], 'the demo must use what an app can import: fastify-tenancy, fastify-tenancy/admin, fastify-tenancy/testing')
})

test('the demo import check catches an internal module, static, dynamic or type-only, and lets the entries through', () => {
  const file = join(DEMO, 'start.ts')
  const source = [
    "import { tenancyPlugin } from '../index.js'",
    "import { adminPlugin } from '../admin/index.js'",
    "import { checkIsolation } from '../testing/index.js'",
    "import { demoApp } from './app.js'",
    "import { readFile } from 'node:fs/promises'",
    "import Fastify from 'fastify'",
    "import { createTestTenant } from 'fastify-tenancy/testing'",
    "import { centralTables } from '../database/central-schema.js'",
    "import type { AdminContext } from '../admin/context.js'",
    "const { hashPassword } = await import('../admin/password.js')",
    "import { TenantScope } from 'fastify-tenancy/dist/server/context/tenant-scope.js'"
  ].join('\n')
  assert.deepEqual(forbiddenImports(file, source), [
    '../database/central-schema.js',
    '../admin/context.js',
    '../admin/password.js',
    'fastify-tenancy/dist/server/context/tenant-scope.js'
  ])
})
