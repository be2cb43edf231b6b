import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, webcrypto } from 'node:crypto'
import pg from 'pg'
import { speedUpScram } from '../server/database/scram-keys.js'
import { serverUrl, sql } from './helpers/database.js'

/** A login role of its own with a SCRAM password, dropped when the test ends. */
async function scramRole (t: { after: (fn: () => Promise<void>) => void }, password: string): Promise<string> {
  const role = `scram_${randomBytes(4).toString('hex')}`
  await sql(serverUrl(), "set password_encryption = 'scram-sha-256'; select 1")
  await sql(serverUrl(), `create role ${role} login password '${password}'`)
  t.after(async () => { await sql(serverUrl(), `drop role if exists ${role}`) })
  return role
}

async function login (role: string, password: string): Promise<string> {
  const url = new URL(serverUrl())
  url.username = role
  url.password = password
  const client = new pg.Client({ connectionString: url.toString() })
  await client.connect()
  try {
    return (await client.query('select current_user as who')).rows[0].who
  } finally {
    await client.end()
  }
}

test('with the faster SCRAM login, the right password logs in again and again, a wrong one is still refused, and a changed password works at once', async (t) => {
  assert.equal(speedUpScram(), true)
  // The server asks for SCRAM (the test server's pg_hba), so these logins run through the patched module.
  const role = await scramRole(t, 'first-secret')
  for (let i = 0; i < 3; i++) assert.equal(await login(role, 'first-secret'), role)
  await assert.rejects(login(role, 'first-secreT'), (error: { code?: string }) => error.code === '28P01')
  await sql(serverUrl(), `alter role ${role} password 'second-secret'`)
  await assert.rejects(login(role, 'first-secret'), (error: { code?: string }) => error.code === '28P01')
  assert.equal(await login(role, 'second-secret'), role)
})

test('the key of a password is derived once, however many connections log in with it', async (t) => {
  speedUpScram()
  // node-postgres derives the key with Web Crypto's PBKDF2: count those derivations.
  const subtle = webcrypto.subtle as unknown as { deriveBits: (...args: unknown[]) => Promise<ArrayBuffer> }
  const deriveBits = subtle.deriveBits
  let derived = 0
  subtle.deriveBits = async (...args) => { derived++; return await deriveBits.apply(webcrypto.subtle, args) }
  t.after(() => { subtle.deriveBits = deriveBits })
  const role = await scramRole(t, 'only-secret')
  const logins = await Promise.all(Array.from({ length: 8 }, async () => await login(role, 'only-secret')))
  assert.deepEqual(new Set(logins), new Set([role]))
  assert.equal(derived, 1)
})
