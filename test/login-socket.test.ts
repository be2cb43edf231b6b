import { test } from 'node:test'
import assert from 'node:assert/strict'
import crypto, { randomBytes } from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { createServer, type Socket } from 'node:net'
import pg from 'pg'
import { LoginSocket } from '../server/database/login-socket.js'
import { serverUrl, sql } from './helpers/database.js'

// A tenant connection's socket answers PostgreSQL's SCRAM-SHA-256 challenge
// itself, deriving the password's key once per password and salt.

const permits = { take: async () => {}, give: () => {} }

function client (url: string, user: string, password: string, port?: number): pg.Client {
  const u = new URL(url)
  return new pg.Client({
    host: u.hostname,
    port: port ?? Number(u.port),
    user,
    password,
    database: 'postgres',
    stream: () => new LoginSocket(permits, password)
  })
}

/** Counts PBKDF2 derivations made through node:crypto while `fn` runs. */
async function countingDerivations<T> (fn: () => Promise<T>): Promise<{ result: T, derivations: number }> {
  const original = crypto.pbkdf2
  let derivations = 0
  const counting = (...args: Parameters<typeof crypto.pbkdf2>): void => { derivations++; original(...args) }
  ;(crypto as { pbkdf2: typeof crypto.pbkdf2 }).pbkdf2 = counting as typeof crypto.pbkdf2
  syncBuiltinESMExports()
  try {
    return { result: await fn(), derivations }
  } finally {
    ;(crypto as { pbkdf2: typeof crypto.pbkdf2 }).pbkdf2 = original
    syncBuiltinESMExports()
  }
}

test('connections log in with SCRAM, the key derived once per password and salt; a changed password logs in with its new key, and the old one is refused as PostgreSQL refuses it', async () => {
  const server = serverUrl()
  const role = `login_${randomBytes(4).toString('hex')}`
  const first = randomBytes(9).toString('base64url')
  await sql(server, `create role ${role} login password '${first}'`)
  try {
    const connect = async (password: string): Promise<string> => {
      const c = client(server, role, password)
      await c.connect()
      try { return (await c.query('select current_user as who')).rows[0].who } finally { await c.end() }
    }
    const { result, derivations } = await countingDerivations(async () => [await connect(first), await connect(first), await connect(first)])
    assert.deepEqual(result, [role, role, role])
    assert.equal(derivations, 1, 'three logins, one derivation')

    // Three first logins at once (a cold pool filling up) share the one derivation still running. The most
    // iterations a login accepts make that derivation far longer than a connection's start, so the three overlap.
    const fresh = randomBytes(9).toString('base64url')
    await sql(server, `set scram_iterations = 100000; alter role ${role} password '${fresh}'`)
    const together = await countingDerivations(async () => await Promise.all([connect(fresh), connect(fresh), connect(fresh)]))
    assert.deepEqual(together.result, [role, role, role])
    assert.equal(together.derivations, 1, 'three logins at once, one derivation')

    const second = randomBytes(9).toString('base64url')
    await sql(server, `alter role ${role} password '${second}'`)
    assert.equal(await connect(second), role)
    await assert.rejects(connect(first), (error: Error & { code?: string }) => {
      assert.equal(error.code, '28P01')
      assert.match(error.message, /password authentication failed/)
      return true
    })
  } finally {
    await sql(server, `drop role if exists ${role}`)
  }
})

/** A fake server: runs `script` on each connection with a reader of its messages; returns its port and a close function. */
async function fakeServer (script: (socket: Socket, next: () => Promise<Buffer>) => Promise<void>): Promise<{ port: number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    let buffered = Buffer.alloc(0)
    let wake: (() => void) | null = null
    socket.on('data', (chunk) => { buffered = Buffer.concat([buffered, chunk]); wake?.() })
    socket.on('error', () => {})
    // One frontend message: the startup message has no type byte, the others do.
    let started = false
    const next = async (): Promise<Buffer> => {
      for (;;) {
        const offset = started ? 1 : 0
        if (buffered.length >= offset + 4) {
          const length = buffered.readInt32BE(offset) + offset
          if (buffered.length >= length) {
            const message = buffered.subarray(0, length)
            buffered = buffered.subarray(length)
            started = true
            return message
          }
        }
        await new Promise<void>((resolve) => { wake = resolve })
      }
    }
    script(socket, next).catch(() => { socket.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

function backend (type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}
const authentication = (code: number, data: Buffer = Buffer.alloc(0)): Buffer => {
  const c = Buffer.alloc(4)
  c.writeInt32BE(code)
  return backend('R', Buffer.concat([c, data]))
}
const readyForQuery = backend('Z', Buffer.from('I'))

test('a server that cannot prove it knows the password (a wrong SCRAM server signature) is refused before any statement is sent', { timeout: 20_000 }, async () => {
  let statements = 0
  const fake = await fakeServer(async (socket, next) => {
    await next() // startup
    socket.write(authentication(10, Buffer.from('SCRAM-SHA-256\0\0')))
    const initial = (await next()).toString('utf8')
    const nonce = /r=([^,\0]+)/.exec(initial)?.[1] as string
    socket.write(authentication(11, Buffer.from(`r=${nonce}server,s=${randomBytes(16).toString('base64')},i=4096`)))
    await next() // client-final
    socket.write(authentication(12, Buffer.from(`v=${randomBytes(32).toString('base64')}`)))
    socket.write(authentication(0))
    socket.write(readyForQuery)
    await next()
    statements++
  })
  try {
    const c = client('postgres://x@127.0.0.1', 'anyone', 'secret', fake.port)
    c.on('error', () => {})
    await assert.rejects(c.connect(), /server signature does not match/)
    assert.equal(statements, 0)
  } finally {
    await fake.close()
  }
})

test('a server that asks for another kind of password (cleartext) gets node-postgres\'s own answer', { timeout: 20_000 }, async () => {
  let sent = ''
  const fake = await fakeServer(async (socket, next) => {
    await next() // startup
    socket.write(authentication(3))
    const password = await next()
    sent = password.subarray(5, password.length - 1).toString('utf8')
    socket.write(authentication(0))
    socket.write(readyForQuery)
  })
  try {
    const c = client('postgres://x@127.0.0.1', 'anyone', 'plain-secret', fake.port)
    await c.connect()
    assert.equal(sent, 'plain-secret')
    c.on('error', () => {})
    await c.end().catch(() => {})
  } finally {
    await fake.close()
  }
})

/** A fake SCRAM server that answers the first message, then runs `then` (the client-final already read). */
type Script = (socket: Socket, nonce: string, next: () => Promise<Buffer>) => Promise<void>

async function scramThen (then: Script): Promise<{ port: number, close: () => Promise<void>, statements: () => number }> {
  let statements = 0
  const fake = await fakeServer(async (socket, next) => {
    await next() // startup
    socket.write(authentication(10, Buffer.from('SCRAM-SHA-256\0\0')))
    const nonce = /r=([^,\0]+)/.exec((await next()).toString('utf8'))?.[1] as string
    await then(socket, nonce, next)
    await next()
    statements++
  })
  return { ...fake, statements: () => statements }
}

test('a server that skips or repeats steps of the SCRAM login, or sends a message of impossible length, is refused at once', { timeout: 30_000 }, async () => {
  const challenge = (nonce: string): Buffer => authentication(11, Buffer.from(`r=${nonce}server,s=${randomBytes(16).toString('base64')},i=4096`))
  const cases: Array<[string, Script, RegExp]> = [
    ['AuthenticationOk with no proof of the password', async (socket) => {
      socket.write(authentication(0))
      socket.write(readyForQuery)
    }, /out of order/],
    ['a second challenge (another key to derive)', async (socket, nonce, next) => {
      socket.write(challenge(nonce))
      await next()
      socket.write(challenge(nonce))
    }, /out of order/],
    ['AuthenticationOk after the answer, before the signature', async (socket, nonce, next) => {
      socket.write(challenge(nonce))
      await next()
      socket.write(authentication(0))
      socket.write(readyForQuery)
    }, /out of order/],
    ['a length of -1', async (socket) => {
      socket.write(Buffer.from([0x4e, 0xff, 0xff, 0xff, 0xff]))
    }, /login message of 4294967295 bytes/]
  ]
  for (const [what, then, refusal] of cases) {
    const fake = await scramThen(then)
    try {
      const c = client('postgres://x@127.0.0.1', 'anyone', 'secret', fake.port)
      c.on('error', () => {})
      await assert.rejects(c.connect(), refusal, what)
      assert.equal(fake.statements(), 0, what)
    } finally {
      await fake.close()
    }
  }
})

test('a server error longer than any login message still reaches node-postgres with its code, mid-login and while the key is derived', { timeout: 20_000 }, async () => {
  const detail = 'x'.repeat(100 * 1024)
  const fields = Buffer.from(`SFATAL\0VFATAL\0C28000\0Mrole is not permitted to log in\0D${detail}\0\0`, 'utf8')
  const scripts: Array<[string, Script]> = [
    ['after the first message', async (socket) => {
      socket.write(backend('E', fields))
      socket.end()
    }],
    // A challenge of the most iterations accepted, then the error at once: it comes while the key is being derived.
    ['while the key is derived', async (socket, nonce) => {
      socket.write(authentication(11, Buffer.from(`r=${nonce}server,s=${randomBytes(16).toString('base64')},i=100000`)))
      socket.write(backend('E', fields))
      socket.end()
    }]
  ]
  for (const [when, script] of scripts) {
    const fake = await scramThen(script)
    try {
      const c = client('postgres://x@127.0.0.1', 'anyone', `secret-${when}`, fake.port)
      c.on('error', () => {})
      await assert.rejects(c.connect(), (error: Error & { code?: string }) => {
        assert.equal(error.code, '28000', when)
        assert.match(error.message, /not permitted to log in/, when)
        return true
      })
    } finally {
      await fake.close()
    }
  }
})
