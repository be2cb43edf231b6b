import type { Socket } from 'node:net'
import { BudgetedSocket, type SocketPermits } from './budget-socket.js'
import { ScramExchange } from './scram.js'

/** Backend message types and authentication codes the login reads (PostgreSQL protocol 3.0). */
const AUTHENTICATION = 0x52 // 'R'
const NOTICE = 0x4e // 'N'
const NEGOTIATE_VERSION = 0x76 // 'v'
const SASL = 10
const SASL_CONTINUE = 11
const SASL_FINAL = 12
/** The one-byte answers to an SSLRequest or GSSENCRequest: TLS or GSS follow, which this class leaves to node-postgres. */
const SSL_ANSWERS = new Set([0x53, 0x4e, 0x47]) // 'S', 'N', 'G'
const EMPTY = Buffer.alloc(0)

function frontend (type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

function int32 (value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32BE(value)
  return b
}

/**
 * A tenant connection's socket that answers the server's SCRAM-SHA-256
 * challenge itself, with the password's key derived once per password and
 * salt (scram.ts), instead of letting node-postgres derive it again on every
 * connection. node-postgres writes its StartupMessage as always; the SASL
 * messages that follow are answered here, and node-postgres gets the
 * server's AuthenticationOk and everything after it, as if the server had
 * asked for no password. Anything else (a cleartext or MD5 password, a
 * server error such as a wrong password or a missing database, TLS) goes to
 * node-postgres unchanged from that message on, so it reports it as it
 * always does. It is node-postgres's public `stream` option, used for this
 * library's own connections only.
 */
export class LoginSocket extends BudgetedSocket {
  private readonly password: string
  private phase: 'login' | 'pass' = 'login'
  private received: Buffer = EMPTY
  private exchange: ScramExchange | null = null
  /** True while the answer to the server's challenge is being worked out (the key may be derived on the thread pool). */
  private answering = false

  constructor (permits: SocketPermits, password: string) {
    super(permits)
    this.password = password
  }

  override push (chunk: any, encoding?: BufferEncoding): boolean {
    if (this.phase !== 'login' || chunk === null || !Buffer.isBuffer(chunk)) return super.push(chunk, encoding)
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk])
    this.readLogin()
    return true
  }

  /** Reads the whole backend messages received so far, while the login is ours. */
  private readLogin (): void {
    if (this.exchange === null && SSL_ANSWERS.has(this.received[0] as number)) { this.handOver(); return }
    while (this.phase === 'login' && !this.answering && this.received.length >= 5) {
      const length = this.received.readInt32BE(1)
      if (this.received.length < 1 + length) return
      const type = this.received[0]
      const message = this.received.subarray(0, 1 + length)
      if (type === NOTICE || type === NEGOTIATE_VERSION) {
        this.received = this.received.subarray(1 + length)
        super.push(message)
        continue
      }
      const code = type === AUTHENTICATION && length >= 8 ? this.received.readInt32BE(5) : -1
      const data = message.subarray(9)
      if (code === SASL && this.exchange === null && mechanisms(data).includes('SCRAM-SHA-256')) {
        this.received = this.received.subarray(1 + length)
        this.exchange = new ScramExchange(this.password)
        const first = Buffer.from(this.exchange.first(), 'utf8')
        super.write(frontend('p', Buffer.from('SCRAM-SHA-256\0', 'utf8'), int32(first.length), first))
      } else if (code === SASL_CONTINUE && this.exchange !== null) {
        this.received = this.received.subarray(1 + length)
        this.answering = true
        this.exchange.answer(data.toString('utf8')).then((final) => {
          this.answering = false
          if (this.destroyed) return
          super.write(frontend('p', Buffer.from(final, 'utf8')))
          this.readLogin()
        }, (error: Error) => { this.destroy(error) })
      } else if (code === SASL_FINAL && this.exchange !== null) {
        this.received = this.received.subarray(1 + length)
        try {
          this.exchange.verify(data.toString('utf8'))
        } catch (error) {
          this.destroy(error as Error)
          return
        }
      } else {
        // AuthenticationOk, an error, or a login this class does not make: node-postgres reads it from here on.
        this.handOver()
      }
    }
  }

  private handOver (): void {
    this.phase = 'pass'
    const rest = this.received
    this.received = EMPTY
    if (rest.length > 0) super.push(rest)
  }
}

/** The mechanism names of an AuthenticationSASL message's body (NUL-terminated, ended by an empty one). */
function mechanisms (data: Buffer): string[] {
  return data.toString('utf8').split('\0').filter((name) => name !== '')
}

/** node-postgres's `stream` option for a tenant pool's connections: counted by `permits`, logging in with `password` (when there is one). */
export function tenantStream (permits: SocketPermits, password: string): () => Socket {
  return password === '' ? () => new BudgetedSocket(permits) : () => new LoginSocket(permits, password)
}
