import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto'

// scrypt with a per-password salt; the parameters are stored with the hash
// (scrypt$N$r$p$salt$hash) so they can be raised later without breaking old hashes.
const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 64

async function scrypt (password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFKC'), salt, KEY_LENGTH, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (error, key) => {
      if (error !== null) reject(error)
      else resolve(key)
    })
  })
}

/** Hashes a password for storage. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, N, R, P)
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** True when `password` matches a stored hash; false for any malformed hash. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20) return false
  const expected = Buffer.from(parts[5] as string, 'base64url')
  const key = await scrypt(password, Buffer.from(parts[4] as string, 'base64url'), n, r, p)
  return expected.length === key.length && timingSafeEqual(expected, key)
}

/** A random password for generated accounts: 20 characters from a readable alphabet. */
export function generatePassword (): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'
  const bytes = randomBytes(20)
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('')
}
