import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * A notice that must never be stored (a generated password): it rides the
 * post-redirect-get hop in a short-lived, encrypted, httpOnly cookie instead
 * of the session's flash in the database, is shown by the next page once,
 * and is cleared there. Nothing server-side ever holds it.
 */
export class OneTimeNotice {
  private readonly key: Buffer
  constructor (secret: string, private readonly cookie: { name: string, path: string, secure: boolean }) {
    this.key = createHash('sha256').update('fastify-tenancy one-time notice\n' + secret).digest()
  }

  set (reply: FastifyReply, text: string): void {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    const sealed = Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()])
    reply.setCookie(this.cookie.name, sealed.toString('base64url'), { path: this.cookie.path, httpOnly: true, sameSite: 'strict', secure: this.cookie.secure, maxAge: 60 })
    reply.header('cache-control', 'no-store')
  }

  /** The notice, once: the cookie is cleared whether it opens or not. */
  take (request: FastifyRequest, reply: FastifyReply): string | null {
    const raw = request.cookies[this.cookie.name]
    if (raw === undefined) return null
    reply.clearCookie(this.cookie.name, { path: this.cookie.path, httpOnly: true, sameSite: 'strict', secure: this.cookie.secure })
    reply.header('cache-control', 'no-store')
    try {
      const sealed = Buffer.from(raw, 'base64url')
      if (sealed.length < 29) return null
      const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, 12))
      decipher.setAuthTag(sealed.subarray(sealed.length - 16))
      return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      return null
    }
  }
}
