import { createHash, createHmac } from 'node:crypto'
import { createRequire } from 'node:module'

type Bytes = ArrayBuffer | Uint8Array
interface PgCrypto {
  deriveKey?: (password: string, salt: Uint8Array, iterations: number) => Promise<Bytes>
  hmacSha256?: (key: Bytes, message: string) => Promise<Bytes>
  sha256?: (data: Bytes) => Promise<Bytes>
  [kInstalled]?: true
}
const kInstalled = Symbol.for('fastify-tenancy.scram')
/** Distinct password, salt and iteration triples kept (a few roles on a few servers). */
const MAX_KEYS = 64

const bytes = (data: Bytes): Uint8Array => data instanceof Uint8Array ? data : new Uint8Array(data)

/**
 * Makes node-postgres's SCRAM-SHA-256 login (PostgreSQL's default password
 * method) cheap for a server that opens a new connection for each cold
 * tenant. Its SASL code calls three functions of its exported crypto module:
 *
 * - `deriveKey`: PBKDF2 over the password, 4,096 rounds unless the server
 *   says otherwise, a millisecond or more of CPU per connection. The key
 *   depends only on the password, the role's salt and the round count, all
 *   fixed until the password changes (a new salt then misses), so each triple
 *   is derived once and kept, under a hash of the three (the map holds no
 *   password).
 * - `hmacSha256` and `sha256`: Web Crypto calls, whose argument checking
 *   cost more than the hashing; here node:crypto's own HMAC and SHA-256, which
 *   compute the same bytes.
 *
 * The proof is still computed for every connection and the server still
 * checks it, and checks the server's signature back. Returns false and
 * changes nothing when the module is not there (another pg version).
 */
export function speedUpScram (): boolean {
  let pgCrypto: PgCrypto
  try {
    pgCrypto = createRequire(import.meta.url)('pg/lib/crypto/utils')
  } catch {
    return false
  }
  const derive = pgCrypto.deriveKey
  if (typeof derive !== 'function' || typeof pgCrypto.hmacSha256 !== 'function' || typeof pgCrypto.sha256 !== 'function') return false
  if (pgCrypto[kInstalled] === true) return true
  const keys = new Map<string, Promise<Bytes>>()
  pgCrypto.deriveKey = async (password, salt, iterations) => {
    const id = createHash('sha256').update(password).update('\0').update(salt).update(`\0${iterations}`).digest('base64')
    let key = keys.get(id)
    if (key === undefined) {
      key = derive(password, salt, iterations)
      if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value as string)
      keys.set(id, key)
      key.catch(() => { keys.delete(id) })
    }
    return await key
  }
  pgCrypto.hmacSha256 = async (key, message) => createHmac('sha256', bytes(key)).update(message, 'utf8').digest()
  pgCrypto.sha256 = async (data) => createHash('sha256').update(bytes(data)).digest()
  pgCrypto[kInstalled] = true
  return true
}
