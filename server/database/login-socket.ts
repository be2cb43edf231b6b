import type { Socket } from 'node:net'
import { BudgetedSocket, type SocketPermits } from './budget-socket.js'
import { ScramExchange } from './scram.js'
import { DatabaseLoginError } from '../errors.js'

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
/** No authentication, notice or version message is anywhere near this long; a longer length is a broken or hostile stream. */
const MAX_LOGIN_MESSAGE = 64 * 1024

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
  /**
   * Where the SCRAM exchange is: each server message is accepted once and
   * in order (one challenge, one final signature, then AuthenticationOk), so
   * a server can neither make the client derive keys again and again nor
   * skip proving that it knows the password.
   */
  private step: 'none' | 'sent-first' | 'answering' | 'sent-final' | 'verified' = 'none'

  constructor (permits: SocketPermits, password: string) {
    super(permits)
    this.password = password
  }

  override push (chunk: any, encoding?: BufferEncoding): boolean {
    if (this.phase !== 'login') return super.push(chunk, encoding)
    if (chunk === null) {
      // The server closed during the login: what it sent before (its error) reaches node-postgres first.
      this.handOver()
      return super.push(null)
    }
    if (!Buffer.isBuffer(chunk)) return super.push(chunk, encoding)
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk])
    return this.readLogin()
  }

  /** Reads the whole backend messages received so far, while the login is ours. */
  private readLogin (): boolean {
    if (this.step === 'none' && SSL_ANSWERS.has(this.received[0] as number)) return this.handOver()
    while (this.phase === 'login' && this.received.length >= 5) {
      const type = this.received[0]
      // A server error (a wrong password, a missing database, too many connections) is node-postgres's to report, even
      // mid-answer and whatever its length: the type is read first, and only the messages read here are bounded.
      if (type !== AUTHENTICATION && type !== NOTICE && type !== NEGOTIATE_VERSION) return this.handOver()
      const length = this.received.readUInt32BE(1)
      if (length < 4 || length > MAX_LOGIN_MESSAGE) return this.refuse(`a login message of ${length} bytes`)
      if (this.received.length < 1 + length) return true
      // The answer to the challenge is still being worked out: the next message waits for it.
      if (this.step === 'answering') return true
      const message = this.received.subarray(0, 1 + length)
      if (type !== AUTHENTICATION) {
        this.received = this.received.subarray(1 + length)
        super.push(message)
        continue
      }
      const code = length >= 8 ? this.received.readInt32BE(5) : -1
      const data = message.subarray(9)
      if (this.step === 'none') {
        // No SCRAM asked for (AuthenticationOk at once, a cleartext or MD5 password, SCRAM with channel binding only): node-postgres's.
        if (code !== SASL || !mechanisms(data).includes('SCRAM-SHA-256')) return this.handOver()
        this.received = this.received.subarray(1 + length)
        this.exchange = new ScramExchange(this.password)
        this.step = 'sent-first'
        const first = Buffer.from(this.exchange.first(), 'utf8')
        super.write(frontend('p', Buffer.from('SCRAM-SHA-256\0', 'utf8'), int32(first.length), first))
      } else if (this.step === 'sent-first' && code === SASL_CONTINUE) {
        this.received = this.received.subarray(1 + length)
        this.step = 'answering'
        const exchange = this.exchange as ScramExchange
        exchange.answer(data.toString('utf8')).then((final) => {
          if (this.phase !== 'login' || this.destroyed) return
          this.step = 'sent-final'
          super.write(frontend('p', Buffer.from(final, 'utf8')))
          this.readLogin()
        }, (error: Error) => { this.destroy(error) })
      } else if (this.step === 'sent-final' && code === SASL_FINAL) {
        this.received = this.received.subarray(1 + length)
        try {
          (this.exchange as ScramExchange).verify(data.toString('utf8'))
        } catch (error) {
          this.destroy(error as Error)
          return true
        }
        this.step = 'verified'
      } else if (this.step === 'verified' && code === 0) {
        return this.handOver()
      } else {
        return this.refuse(`authentication message ${code} out of order`)
      }
    }
    return true
  }

  /** node-postgres reads everything from here on (the messages not read yet included). */
  private handOver (): boolean {
    this.phase = 'pass'
    const rest = this.received
    this.received = EMPTY
    return rest.length > 0 ? super.push(rest) : true
  }

  private refuse (what: string): boolean {
    this.destroy(new DatabaseLoginError(`the server sent ${what}`))
    return true
  }
}

/** The mechanism names of an AuthenticationSASL message's body (NUL-terminated, ended by an empty one). */
function mechanisms (data: Buffer): string[] {
  return data.toString('utf8').split('\0').filter((name) => name !== '')
}

/** The socket of a tenant pool's new connection: counted by `permits`, logging in with `password` (when there is one). */
export function tenantSocket (permits: SocketPermits, password: string): Socket {
  return password === '' ? new BudgetedSocket(permits) : new LoginSocket(permits, password)
}
