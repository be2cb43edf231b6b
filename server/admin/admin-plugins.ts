import { misuse } from '../misuse.js'

/**
 * The admin's own packages: optional peer dependencies of fastify-tenancy, so
 * an app that does not mount the admin does not install them. An app that
 * does lists them beside fastify-tenancy (`npm install` of this list).
 */
export const ADMIN_PEERS = ['@fastify/cookie', '@fastify/csrf-protection', '@fastify/formbody', '@fastify/helmet', '@fastify/multipart', '@fastify/rate-limit', '@fastify/view', 'eta'] as const

/** Loads the admin's plugins when it is registered; a missing one is a sentence that names what to install. */
export async function loadAdminPlugins () {
  try {
    const [cookie, csrf, formbody, helmet, multipart, rateLimit, view, eta] = await Promise.all([
      import('@fastify/cookie'), import('@fastify/csrf-protection'), import('@fastify/formbody'), import('@fastify/helmet'),
      import('@fastify/multipart'), import('@fastify/rate-limit'), import('@fastify/view'), import('eta')
    ])
    return {
      cookie: cookie.default,
      csrf: csrf.default,
      formbody: formbody.default,
      helmet: helmet.default,
      multipart: multipart.default,
      rateLimit: rateLimit.default,
      view: view.default,
      Eta: eta.Eta
    }
  } catch (error) {
    const message = String((error as Error).message)
    const missing = ADMIN_PEERS.find((name) => message.includes(`'${name}'`))
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND' || missing === undefined) throw error
    throw misuse.adminPeerMissing(missing, ADMIN_PEERS)
  }
}
