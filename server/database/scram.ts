import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto'
import { Lru } from '../lru.js'
import { DatabaseLoginError } from '../errors.js'

/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), as PostgreSQL asks
 * for it without channel binding. It exists so a tenant connection's login
 * derives the password's key once per password and salt (PBKDF2, 4,096
 * rounds by default: about a millisecond of CPU) instead of on every new
 * connection: with a thousand tenant databases and a budget of twenty, every
 * request may open one. The keys are kept in this process only, as the
 * password is.
 */

/** The highest iteration count accepted from a server (what node-postgres accepts by default). */
const MAX_ITERATIONS = 100_000

/** What SCRAM needs of a password once it is salted: ClientKey, StoredKey and ServerKey. */
interface ScramKeys { clientKey: Buffer, storedKey: Buffer, serverKey: Buffer }

/**
 * Derived keys by password digest, salt and iteration count. PostgreSQL keeps
 * one salt per role and password, so a key serves every later login; a
 * pooler that sends a new salt on each login (PgBouncer 1.18 with a
 * plaintext auth_file) gets nothing from it and, the least recently used
 * going first, does not push out the keys that are used.
 */
const derived = new Lru<string, Promise<ScramKeys>>({ max: 256 })

// SASLprep (RFC 4013) as PostgreSQL and libpq apply it to the password: non-ASCII spaces to a space, "mapped to nothing" removed, NFKC.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g
// eslint-disable-next-line no-misleading-character-class
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B\u180C\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g
function prepared (password: string): string {
  return password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC')
}

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest()

async function keysOf (password: string, salt: Buffer, iterations: number): Promise<ScramKeys> {
  const id = `${createHash('sha256').update(password).digest('hex')}:${salt.toString('base64')}:${iterations}`
  let keys = derived.get(id)
  if (keys === undefined) {
    keys = new Promise<Buffer>((resolve, reject) => {
      // node:crypto's PBKDF2 runs on libuv's thread pool, off the event loop.
      pbkdf2(prepared(password), salt, iterations, 32, 'sha256', (error, key) => { if (error !== null) reject(error); else resolve(key) })
    }).then((salted) => {
      const clientKey = hmac(salted, 'Client Key')
      return { clientKey, storedKey: createHash('sha256').update(clientKey).digest(), serverKey: hmac(salted, 'Server Key') }
    })
    derived.set(id, keys)
    // A failed derivation is not kept.
    keys.catch(() => { derived.delete(id) })
  }
  return await keys
}

/** One login's SCRAM exchange: the first message, the answer to the server's challenge, the check of its signature. */
export class ScramExchange {
  private readonly nonce = randomBytes(18).toString('base64')
  private readonly password: string
  private expected: Buffer | null = null

  constructor (password: string) {
    this.password = password
  }

  /** The client-first-message (no channel binding, the user name left to the startup message, as PostgreSQL wants it). */
  first (): string {
    return `n,,n=*,r=${this.nonce}`
  }

  /** The client-final-message for the server-first-message `challenge`; throws when the challenge is not one to answer. */
  async answer (challenge: string): Promise<string> {
    const fields = attributes(challenge)
    const nonce = fields.get('r')
    const salt = fields.get('s')
    const iterations = Number(fields.get('i'))
    if (nonce === undefined || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new DatabaseLoginError('the server nonce does not extend the client nonce')
    if (salt === undefined || salt === '') throw new DatabaseLoginError('the server sent no salt')
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new DatabaseLoginError(`iteration count ${String(fields.get('i'))} is not between 1 and ${MAX_ITERATIONS}`)
    const keys = await keysOf(this.password, Buffer.from(salt, 'base64'), iterations)
    const withoutProof = `c=biws,r=${nonce}`
    const message = `n=*,r=${this.nonce},${challenge},${withoutProof}`
    const signature = hmac(keys.storedKey, message)
    const proof = Buffer.alloc(keys.clientKey.length)
    for (let i = 0; i < proof.length; i++) proof[i] = (keys.clientKey[i] as number) ^ (signature[i] as number)
    this.expected = hmac(keys.serverKey, message)
    return `${withoutProof},p=${proof.toString('base64')}`
  }

  /** Throws unless the server-final-message proves the server knows the password too. */
  verify (final: string): void {
    const signature = attributes(final).get('v')
    const sent = signature === undefined ? Buffer.alloc(0) : Buffer.from(signature, 'base64')
    if (this.expected === null || sent.length !== this.expected.length || !timingSafeEqual(sent, this.expected)) {
      throw new DatabaseLoginError('the server signature does not match')
    }
  }
}

function attributes (message: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const part of message.split(',')) {
    const eq = part.indexOf('=')
    if (eq === 1) fields.set(part.slice(0, 1), part.slice(2))
  }
  return fields
}
