// The admin panel's augmentations of Fastify's types, in one place.
import type { Permission } from '../entities/central/admin.entity.js'
import type { SignedInAdmin } from './auth/sessions.js'

declare module 'fastify' {
  interface FastifyReply {
    /** @fastify/view's render to a string, registered by the admin under its own name. */
    adminViewAsync: (page: string, data?: object) => Promise<string>
  }
  interface FastifyRequest {
    /** The signed-in admin on admin routes, or null. */
    admin: SignedInAdmin | null
  }
  interface FastifyContextConfig {
    /**
     * What an admin route needs: `public` (the sign-in page), `signed-in`
     * (any admin), or a permission. Every admin route must say.
     */
    admin?: 'public' | 'signed-in' | Permission
  }
}

export {}
