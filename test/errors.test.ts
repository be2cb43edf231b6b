import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { errorCodes } from '../server/errors.js'

test('the README lists exactly the error codes the library can throw', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const documented = [...new Set([...readme.matchAll(/`(FST_TENANCY_[A-Z_]+)`/g)].map((m) => m[1]))].sort()
  assert.deepEqual(documented, [...errorCodes].sort())
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
