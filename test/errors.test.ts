import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { sep } from 'node:path'
import { errorCodes } from '../server/errors.js'

const docsDir = new URL('../docs/', import.meta.url)

test('the error table (docs/errors.md) lists exactly the error codes the library can throw, once each', () => {
  const page = readFileSync(new URL('errors.md', docsDir), 'utf8')
  // The first column of each table row: | `FST_TENANCY_…` | status | when | what to do |
  const rows = [...page.matchAll(/^\| `(FST_TENANCY_[A-Z_]+)` \|/gm)].map((m) => m[1] as string)
  assert.deepEqual(rows.filter((code, i) => rows.indexOf(code) !== i), [], 'codes listed twice in the error table')
  assert.deepEqual([...rows].sort(), [...errorCodes].sort())
  // Nor does the page name a code outside its table that the library cannot throw.
  const named = [...new Set([...page.matchAll(/`(FST_TENANCY_[A-Z_]+)`/g)].map((m) => m[1]))].sort()
  assert.deepEqual(named, [...errorCodes].sort())
})

test('the README and every page under docs/ name only error codes the library can throw', () => {
  const files = [new URL('../README.md', import.meta.url), ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => new URL(f, docsDir))]
  const known = new Set<string>(errorCodes)
  const unknown: string[] = []
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/`(FST_TENANCY_[A-Z_]+)`/g)) {
      if (!known.has(m[1] as string)) unknown.push(`${file.pathname.split('/').slice(-2).join('/')}: ${m[1] as string}`)
    }
  }
  assert.deepEqual(unknown, [])
})

test('every error code is unique and says what to do', async () => {
  assert.equal(new Set(errorCodes).size, errorCodes.length)
  const errors = await import('../server/errors.js')
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function') continue
    const error = new (value as new (...a: string[]) => Error & { code: string, statusCode: number })('first argument', 'second argument', 'third argument')
    assert.match(error.code, /^FST_TENANCY_[A-Z_]+$/, name)
    assert.ok(error.message.length > 10, name)
    assert.ok(error.statusCode >= 400, name)
  }
})

// Errors a user can see come from server/errors.ts. A plain Error is kept only
// where reaching it means a bug or a broken install, never a user's mistake.
const PLAIN_ERRORS_ALLOWED: Record<string, string> = {
  'server/package-root.ts': 'the package has no package.json above it: a broken install, not a user mistake'
}

test('no module under server/ makes its own errors: no new Error(...), error subclasses or hand-made { code } objects', () => {
  const root = new URL('../', import.meta.url)
  const files = readdirSync(new URL('server/', root), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.startsWith('demo/'))
    .map((f) => `server/${f.split(sep).join('/')}`)
  assert.ok(files.length > 50, 'the scan sees the library')
  const found: string[] = []
  for (const file of files) {
    if (PLAIN_ERRORS_ALLOWED[file] !== undefined) continue
    const lines = readFileSync(new URL(file, root), 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (/new (?:Type|Range|Syntax)?Error\(|extends Error\b|Object\.assign\([^)]*\{\s*code:/.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`)
    })
  }
  assert.deepEqual(found, [], 'register the error in server/errors.ts (and docs/errors.md) instead')
})

// A MisconfigurationError is made by a named factory of server/misuse.ts
// (`throw misuse.noSeeder()`), never from a sentence at the throw site: code
// and tests refer to the misuse, and its sentence is written once.
const MISUSE_FACTORIES = 'server/misuse.ts'
const FREE_TEXT_MISUSE = /\bMisconfigurationError\s*\(/g

function freeTextMisuses (file: string, text: string): string[] {
  return [...text.matchAll(FREE_TEXT_MISUSE)].map((m) => `${file}:${text.slice(0, m.index).split('\n').length}`)
}

test('no module under server/ but server/misuse.ts makes a MisconfigurationError: each misuse has a named factory there', () => {
  const root = new URL('../', import.meta.url)
  const files = readdirSync(new URL('server/', root), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `server/${f.split(sep).join('/')}`)
    .filter((f) => f !== MISUSE_FACTORIES && f !== 'server/errors.ts')
  assert.ok(files.length > 50, 'the scan sees the library')
  const found = files.flatMap((file) => freeTextMisuses(file, readFileSync(new URL(file, root), 'utf8')))
  assert.deepEqual(found, [], `add a named factory to ${MISUSE_FACTORIES} and throw it instead`)
})

test('the free-text check finds a MisconfigurationError made at a throw site, with or without new, over lines', () => {
  // Guards the check itself: a pattern that never matches would pass the test above.
  assert.deepEqual(freeTextMisuses('a.ts', "throw new MisconfigurationError('There is no seeder.')"), ['a.ts:1'])
  assert.deepEqual(freeTextMisuses('a.ts', 'x\nthrow new MisconfigurationError(\n  `Job "` + name + `" was not queued.`\n)'), ['a.ts:2'])
  assert.deepEqual(freeTextMisuses('a.ts', 'throw MisconfigurationError(message)'), ['a.ts:1'])
  assert.deepEqual(freeTextMisuses('a.ts', 'throw misuse.noSeeder()'), [])
})

test('every misuse factory makes a MisconfigurationError (code FST_TENANCY_MISCONFIGURED, status 500) with its own sentence', async () => {
  const { MisconfigurationError } = await import('../server/errors.js')
  const { misuse } = await import('../server/misuse.js')
  const messages = new Set<string>()
  for (const [name, factory] of Object.entries(misuse)) {
    // Arrays of one string: the same text as a string in a sentence, and a list where a factory takes one.
    const error = (factory as (...a: unknown[]) => Error & { code: string, statusCode: number })(['first'], ['second'], ['third'])
    assert.ok(error instanceof MisconfigurationError, name)
    assert.equal(error.code, 'FST_TENANCY_MISCONFIGURED', name)
    assert.equal(error.statusCode, 500, name)
    assert.ok(error.message.length > 10 && !error.message.includes('%s'), name)
    assert.ok(!messages.has(error.message), `${name} repeats another factory's sentence`)
    messages.add(error.message)
  }
})
