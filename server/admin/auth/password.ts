import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto'

// scrypt at OWASP's current minimum (Password Storage Cheat Sheet: N=2^17,
// r=8, p=1, 128 MiB per hash), with a per-password salt. The parameters are
// stored with the hash (scrypt$N$r$p$salt$hash), so a stored hash made with
// older ones still verifies, and `needsRehash` tells sign-in to upgrade it.
const N = 1 << 17
const R = 8
const P = 1
const KEY_LENGTH = 64
// 128 * N * r bytes is what scrypt needs; Node refuses anything over maxmem.
const MAX_MEMORY = 256 * 1024 * 1024

async function scrypt (password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFKC'), salt, KEY_LENGTH, { N: n, r, p, maxmem: MAX_MEMORY }, (error, key) => {
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
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20 || 128 * n * r > MAX_MEMORY / 2) return false
  const expected = Buffer.from(parts[5] as string, 'base64url')
  const key = await scrypt(password, Buffer.from(parts[4] as string, 'base64url'), n, r, p)
  return expected.length === key.length && timingSafeEqual(expected, key)
}

/** True when a stored hash was made with weaker parameters than today's. */
export function needsRehash (stored: string): boolean {
  const parts = stored.split('$')
  return parts[0] !== 'scrypt' || Number(parts[1]) < N || Number(parts[2]) < R || Number(parts[3]) < P
}

let dummy: Promise<string> | undefined
/**
 * A hash of a random password at today's cost: sign-in verifies against it
 * when no account matches, so unknown and real accounts cost the same work.
 */
export async function dummyHash (): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('base64url'))
  return await dummy
}

/** A random password for generated accounts: 20 characters from a readable alphabet. */
export function generatePassword (): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'
  // 55 letters: rejecting bytes >= 220 keeps every letter equally likely.
  const out: string[] = []
  while (out.length < 20) {
    for (const b of randomBytes(32)) {
      if (b < 220 && out.length < 20) out.push(alphabet[b % alphabet.length] as string)
    }
  }
  return out.join('')
}
